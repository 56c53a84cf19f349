#if canImport(Glibc)
    import Glibc
#endif
import BatonComm
import BatonCUDA
import BatonNCCL
import BatonTensor
import Foundation

/// `baton selftest --nccl`: every operation of `NCCLCommunicator` through a world-size-1 group on
/// one GPU (NCCL refuses two ranks on one GPU, so this is what one GPU can check), the torchrun
/// path (environment, TCP rendezvous, `ncclCommInitRank`) with RANK=0 WORLD_SIZE=1, buffer
/// lifetimes under stream ordering, and a receive nobody sends, which must end in an error naming
/// the rank, not a hang (NCCL 2.28 rejects a lone receive from self when it is issued; a library
/// that queued it would hang on the device until the watchdog's timeout). Prints one PASS/FAIL
/// line per check.
final class NCCLSelfTest {
    let ordinal: Int
    private(set) var passed = 0
    private(set) var failed = 0

    init(ordinal: Int) { self.ordinal = ordinal }

    func run() -> Int {
        let backend: CUDABackend
        do {
            backend = try CUDABackend(ordinal: ordinal)
            say("nccl selftest: NCCL \(try NCCLLibrary.version()) on \(backend.deviceName) (cuda:\(ordinal))")
        } catch {
            say("nccl selftest: FAIL setup: \(error)")
            return 1
        }
        var communicator: NCCLCommunicator?
        check("group(backends:) of 1 rank: ncclGetUniqueId + ncclCommInitRank in a group") {
            communicator = try NCCLCommunicator.group(backends: [backend], timeout: 30).first
            return communicator?.worldSize == 1 ? nil : "expected one communicator of world size 1"
        }
        guard let comm = communicator else { return summary() }
        collectives(comm, backend)
        lifetimes(comm, backend)
        torchrunPath()
        deadPeer(backend)
        return summary()
    }

    private func summary() -> Int {
        say("nccl selftest: \(passed) passed, \(failed) failed")
        return failed
    }

    func check(_ name: String, _ body: () throws -> String?) {
        let start = MonotonicClock.now()
        var problem: String?
        do { problem = try body() } catch { problem = "\(error)" }
        let ms = (MonotonicClock.now() - start) * 1000
        if let problem {
            failed += 1
            say(String(format: "nccl: FAIL %@ (%.1f ms): %@", name, ms, problem))
        } else {
            passed += 1
            say(String(format: "nccl: PASS %@ (%.1f ms)", name, ms))
        }
    }

    static func values(_ count: Int, seed: Int) -> [Float] {
        // Multiples of 1/4 in [-8, 8): exact in bf16, so every round trip compares exactly.
        (0..<count).map { Float(($0 * 37 + seed * 11) % 64 - 32) / 4 }
    }

    static func compare(_ got: Tensor, _ expected: [Float], dtype: DType, device: Device, backend: CUDABackend) throws
        -> String?
    {
        guard got.device == device else { return "result on \(got.device), expected \(device)" }
        guard got.dtype == dtype else { return "result dtype \(got.dtype), expected \(dtype)" }
        let values = try backend.download(got).floats()
        guard values == expected else {
            let index =
                (0..<min(values.count, expected.count)).first { values[$0] != expected[$0] }
                ?? min(values.count, expected.count)
            return
                "element \(index): got \(index < values.count ? values[index] : .nan), expected \(index < expected.count ? expected[index] : .nan)"
        }
        return nil
    }

    func collectives(_ comm: NCCLCommunicator, _ backend: CUDABackend) {
        for (dtype, shape) in [(DType.f32, Shape([3, 5])), (.bf16, Shape([4, 2, 3]))] {
            let expected = Self.values(shape.elementCount, seed: 1)
            check("allGather \(dtype) \(shape)") {
                let parts = try comm.allGatherAsync(backend.upload(Tensor(expected, shape: shape, dtype: dtype))).wait()
                guard parts.count == 1, parts[0].shape == shape else { return "got \(parts)" }
                return try Self.compare(parts[0], expected, dtype: dtype, device: backend.device, backend: backend)
            }
            check("allReduceSum \(dtype) \(shape) (fp32 accumulation)") {
                let sum = try comm.allReduceSum(backend.upload(Tensor(expected, shape: shape, dtype: dtype)))
                return try Self.compare(sum, expected, dtype: dtype, device: backend.device, backend: backend)
            }
            check("broadcast \(dtype) \(shape) from rank 0") {
                let out = try comm.broadcast(backend.upload(Tensor(expected, shape: shape, dtype: dtype)), root: 0)
                return try Self.compare(out, expected, dtype: dtype, device: backend.device, backend: backend)
            }
            check("exchange \(dtype) \(shape) with itself (ncclSend + ncclRecv in one group)") {
                let (sent, received) = try comm.exchangeAsync(
                    sending: backend.upload(Tensor(expected, shape: shape, dtype: dtype)),
                    to: 0, receivingFrom: 0, shape: shape, dtype: dtype)
                try sent.wait()
                return try Self.compare(
                    received.wait(), expected, dtype: dtype, device: backend.device, backend: backend)
            }
        }
        check("broadcast([Int32]) (host result, polled wait)") {
            let ids = try comm.broadcast([42, -7, 123_456_789], root: 0)
            return ids == [42, -7, 123_456_789] ? nil : "got \(ids)"
        }
        check("allGather of a host tensor returns host tensors") {
            let expected = Self.values(6, seed: 2)
            let parts = try comm.allGather(Tensor(expected, shape: [2, 3]))
            return try Self.compare(parts[0], expected, dtype: .f32, device: .cpu, backend: backend)
        }
        check("peer outside the group is an error naming the rank") {
            do {
                _ = try comm.sendAsync(backend.upload(Tensor([1], shape: [1])), to: 1)
                return "no error"
            } catch {
                return "\(error)".contains("peer rank 1") ? nil : "unexpected error: \(error)"
            }
        }
    }

    func lifetimes(_ comm: NCCLCommunicator, _ backend: CUDABackend) {
        check("inputs dropped before wait() stay valid (stream-ordered, caching allocator reuse)") {
            let count = 1 << 20
            let expected = Self.values(count, seed: 3)
            var handles: [(CommHandle<Tensor>, DType)] = []
            for i in 0..<4 {
                // The only reference to the input is the communicator's once this iteration ends
                // (f32 inputs are read by NCCL itself; bf16 ones through an fp32 copy).
                let dtype: DType = i % 2 == 0 ? .f32 : .bf16
                handles.append(
                    (try comm.allReduceSumAsync(backend.upload(Tensor(expected, shape: [count], dtype: dtype))), dtype))
            }
            // Reuse freed blocks on the compute stream: every new tensor overwrites its memory.
            for seed in 0..<16 { _ = try backend.randomUniform([count], dtype: .bf16, seed: UInt64(seed)) }
            for (handle, dtype) in handles {
                if let problem = try Self.compare(
                    handle.wait(), expected, dtype: dtype, device: backend.device, backend: backend)
                {
                    return problem
                }
            }
            return nil
        }
        check("200 async allGathers in flight, then drained by the watchdog") {
            var handles: [(CommHandle<[Tensor]>, Float)] = []
            for i in 0..<200 {
                let value = Float(i % 50)
                handles.append((try comm.allGatherAsync(backend.upload(Tensor([value, -value], shape: [2]))), value))
            }
            for (handle, value) in handles {
                let got = try backend.download(handle.wait()[0]).floats()
                if got != [value, -value] { return "got \(got), expected \([value, -value])" }
            }
            try backend.synchronize()
            let deadline = MonotonicClock.now() + 2
            while comm.operationsInFlight > 0 && MonotonicClock.now() < deadline { usleep(10_000) }
            return comm.operationsInFlight == 0
                ? nil : "\(comm.operationsInFlight) operations still tracked 2 s after the stream drained"
        }
    }

    func torchrunPath() {
        check("torchrun path: RANK=0 WORLD_SIZE=1 LOCAL_RANK=\(ordinal) -> rendezvous -> ncclCommInitRank") {
            let environment = [
                "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "\(ordinal)", "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": "0"
            ]
            let config = try ProcessGroupConfig.fromEnvironment(environment)
            let backend = try CUDABackend(ordinal: config.localRank)
            let comm = try NCCLCommunicator.connect(config, backend: backend, timeout: 30, rendezvousTimeout: 10)
            let expected = Self.values(9, seed: 4)
            let sum = try comm.allReduceSum(backend.upload(Tensor(expected, shape: [9])))
            return try Self.compare(sum, expected, dtype: .f32, device: backend.device, backend: backend)
        }
    }

    /// A receive that no rank sends: the rank must fail with an error naming it and the operation
    /// (from NCCL at issue, or from the watchdog, which then aborts the communicator) and the host
    /// wait must return.
    func deadPeer(_ backend: CUDABackend) {
        check(
            "a receive nobody sends ends in an error naming rank and op (NCCL's error at issue, or the 2 s watchdog timeout)"
        ) {
            let comm = try NCCLCommunicator.group(backends: [backend], timeout: 2)[0]
            let outcome = DeadPeerOutcome()
            let thread = Thread {
                let start = MonotonicClock.now()
                do {
                    _ = try comm.receiveAsync(from: 0, shape: [1024], dtype: .f32)
                    _ = try comm.broadcast([7], root: 0)  // host wait: must throw, not hang
                    outcome.set("no error after \(MonotonicClock.now() - start) s")
                } catch {
                    outcome.set(String(format: "error after %.1f s: %@", MonotonicClock.now() - start, "\(error)"))
                }
            }
            thread.start()
            guard let text = outcome.wait(seconds: 30) else { return "still blocked after 30 s" }
            say("nccl:   \(text)")
            return text.hasPrefix("error") && text.contains("rank 0") ? nil : text
        }
    }
}

/// One line on standard output, written at once (the device run's output is a pipe).
private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

private final class DeadPeerOutcome: @unchecked Sendable {
    private let condition = NSCondition()
    private var text: String?

    func set(_ value: String) {
        condition.lock()
        text = value
        condition.broadcast()
        condition.unlock()
    }

    func wait(seconds: Double) -> String? {
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        defer { condition.unlock() }
        while text == nil { if !condition.wait(until: deadline) { break } }
        return text
    }
}
