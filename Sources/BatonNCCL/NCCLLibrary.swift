import BatonTensor
import CCUDA

/// The NCCL library, loaded with dlopen on first use (see `CCUDA/loader.c`).
public enum NCCLLibrary {
    /// The function table, or `BatonError(.notAvailable)` naming every path tried.
    static func load() throws -> BatonNCCL {
        guard let table = baton_nccl() else {
            throw BatonError(
                .notAvailable,
                String(cString: baton_nccl_error())
                    + "; multi-GPU runs need NCCL 2.13 or newer (Debian/Ubuntu: libnccl2; pip: nvidia-nccl-cu12)")
        }
        return table.pointee
    }

    /// Whether NCCL can be loaded here.
    public static var isAvailable: Bool { baton_nccl() != nil }

    /// The loaded library's version, e.g. "2.28.3".
    public static func version() throws -> String {
        let nccl = try load()
        var code: Int32 = 0
        try nccl.check(nccl.ncclGetVersion(&code), "ncclGetVersion", comm: nil)
        return versionString(Int(code))
    }

    /// NCCL's version code as text: major*10000 + minor*100 + patch since 2.9, major*1000 + minor*100 + patch before.
    static func versionString(_ code: Int) -> String {
        code >= 10000
            ? "\(code / 10000).\(code / 100 % 100).\(code % 100)" : "\(code / 1000).\(code / 100 % 10).\(code % 100)"
    }
}

extension BatonNCCL {
    /// Throws `BatonError(.nccl)` naming `call` (with the rank and operation when the caller puts them
    /// in it), NCCL's error name and its last error text, unless `status` is success.
    func check(_ status: ncclResult_t, _ call: @autoclosure () -> String, comm: ncclComm_t?) throws {
        if status == 0 { return }
        throw BatonError(.nccl, "\(call()) failed: \(errorText(status, comm: comm))")
    }

    func errorText(_ status: ncclResult_t, comm: ncclComm_t?) -> String {
        let name = ncclGetErrorString(status).map { String(cString: $0) } ?? "NCCL status \(status)"
        let detail = ncclGetLastError(comm).map { String(cString: $0) } ?? ""
        return detail.isEmpty ? name : "\(name) (\(detail))"
    }
}

/// The 128 bytes of an NCCL unique id, as the rendezvous carries them.
enum UniqueID {
    static let byteCount = MemoryLayout<ncclUniqueId>.size

    static func bytes(_ id: ncclUniqueId) -> [UInt8] {
        withUnsafeBytes(of: id) { Array($0) }
    }

    static func id(_ bytes: [UInt8], rank: Int) throws -> ncclUniqueId {
        guard bytes.count == byteCount else {
            throw BatonError(
                .communication,
                "rank \(rank): the rendezvous delivered \(bytes.count) bytes, an NCCL unique id has \(byteCount)")
        }
        var id = ncclUniqueId()
        withUnsafeMutableBytes(of: &id) { $0.copyBytes(from: bytes) }
        return id
    }
}
