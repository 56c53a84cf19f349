import BatonTensor
import CCUDA

/// The loaded CUDA libraries, or a `BatonError` naming what was not found and where it looked.
enum CUDALibraries {
    static func driver() throws -> BatonCUDADriver {
        guard let table = baton_cuda_driver() else {
            throw BatonError(.notAvailable, String(cString: baton_cuda_driver_error()))
        }
        return table.pointee
    }

    static func nvrtc() throws -> BatonNVRTC {
        guard let table = baton_nvrtc() else { throw BatonError(.notAvailable, String(cString: baton_nvrtc_error())) }
        return table.pointee
    }

    static func cublasLt() throws -> BatonCuBLASLt {
        guard let table = baton_cublaslt() else {
            throw BatonError(.notAvailable, String(cString: baton_cublaslt_error()))
        }
        return table.pointee
    }
}

extension BatonCUDADriver {
    /// Throws `BatonError(.cuda)` naming `call` and the driver's error name and text unless `status` is success.
    func check(_ status: CUresult, _ call: @autoclosure () -> String) throws {
        if status == 0 { return }
        var name: UnsafePointer<CChar>?
        var text: UnsafePointer<CChar>?
        _ = cuGetErrorName(status, &name)
        _ = cuGetErrorString(status, &text)
        let nameString = name.map { String(cString: $0) } ?? "CUDA error \(status)"
        let textString = text.map { String(cString: $0) } ?? "unknown"
        let kind: BatonError.Kind = status == 2 ? .outOfMemory : .cuda  // 2 = CUDA_ERROR_OUT_OF_MEMORY
        throw BatonError(kind, "\(call()) failed: \(nameString) (\(textString))")
    }
}

extension BatonNVRTC {
    func check(_ status: nvrtcResult, _ call: @autoclosure () -> String) throws {
        if status == 0 { return }
        throw BatonError(.cuda, "\(call()) failed: \(errorText(status))")
    }

    func errorText(_ status: nvrtcResult) -> String {
        nvrtcGetErrorString(status).map { String(cString: $0) } ?? "NVRTC status \(status)"
    }

    /// "major.minor" of the loaded NVRTC.
    var versionString: String {
        var major: Int32 = 0, minor: Int32 = 0
        _ = nvrtcVersion(&major, &minor)
        return "\(major).\(minor)"
    }
}

extension BatonCuBLASLt {
    func check(_ status: cublasStatus_t, _ call: @autoclosure () -> String) throws {
        if status == 0 { return }
        let text = cublasLtGetStatusString(status).map { String(cString: $0) } ?? "status \(status)"
        throw BatonError(.cuda, "\(call()) failed: \(text)")
    }
}
