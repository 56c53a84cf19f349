#if canImport(Glibc)
    import Glibc
#endif
import BatonComm
import BatonCUDA
import BatonEngine
import BatonNCCL
import BatonTensor
import Foundation

/// `baton selftest --rendezvous`, run under torchrun: the rendezvous that starts a multi-process
/// NCCL group, without GPUs. Rank 0 makes a value (host, pid, a random tag), every rank receives
/// it through the same path as NCCL's unique id (torchrun's agent store when the agent serves one,
/// else rank 0's own server), then all meet at a barrier; each rank prints one line.
/// `--absent-rank R` makes rank R stay away, to see every other rank end with an error naming R.
/// With `--nccl` each rank then joins an NCCL group on cuda:LOCAL_RANK through
/// `NCCLCommunicator.connect` (the path `baton generate --gpus N` takes under torchrun) and checks
/// an all-reduce of rank + 1 against W(W+1)/2.
struct RendezvousSelfTest {
    let timeout: Double
    let absentRank: Int?
    let nccl: Bool

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard LaunchMode.launchedByTorchrun(environment) else {
            throw BatonError.invalidArgument(
                "selftest --rendezvous runs under torchrun (WORLD_SIZE is not set), e.g. "
                    + "torchrun --nproc-per-node 2 --no-python baton selftest --rendezvous")
        }
        let config = try ProcessGroupConfig.fromEnvironment(environment)
        let host = ProcessInfo.processInfo.hostName
        if config.rank == absentRank {
            say(
                "rendezvous: rank \(config.rank)/\(config.worldSize): staying away for \(timeout + 5) s (--absent-rank)"
            )
            usleep(UInt32((timeout + 5) * 1_000_000))
            throw BatonError(.communication, "rank \(config.rank) stayed away on purpose (--absent-rank)")
        }
        let start = Date()
        let value =
            config.rank == 0
            ? Array("from rank 0 on \(host), pid \(getpid()), tag \(UInt32.random(in: 0...UInt32.max))".utf8) : nil
        let received: [UInt8]
        let path: String
        if config.agentStore {
            let rendezvous = try StoreRendezvous(config, name: "selftest", timeout: timeout)
            received = try rendezvous.broadcast(value, timeout: timeout)
            try rendezvous.barrier("after-broadcast", timeout: timeout)
            path = "torchrun's store at \(config.masterAddress):\(config.masterPort) (keys \(rendezvous.prefix)*)"
        } else {
            received = try Rendezvous.exchange(config, payload: value, timeout: timeout)
            path =
                "rank 0's own server at \(config.masterAddress):\(config.masterPort) (TORCHELASTIC_USE_AGENT_STORE is not True)"
        }
        say(
            String(
                format:
                    "rendezvous: rank %d/%d (local rank %d, %@, pid %d): got '%@' via %@; barrier passed after %.2f s",
                config.rank, config.worldSize, config.localRank, host, getpid(),
                String(decoding: received, as: UTF8.self),
                path, Date().timeIntervalSince(start)))
        if nccl { try checkNCCL(config) }
    }

    private func checkNCCL(_ config: ProcessGroupConfig) throws {
        let backend = try CUDABackend(ordinal: config.localRank)
        let start = Date()
        let communicator = try NCCLCommunicator.connect(
            config, backend: backend, timeout: timeout, rendezvousTimeout: timeout)
        let sum = try backend.download(
            communicator.allReduceSum(backend.upload(Tensor([Float(config.rank + 1)], shape: [1])))
        ).floats()
        let expected = Float(config.worldSize * (config.worldSize + 1) / 2)
        say(
            String(
                format: "nccl: rank %d/%d on cuda:%d (%@): allReduceSum of rank+1 = %g, expected %g, %.2f s",
                config.rank, config.worldSize, config.localRank, backend.deviceName, sum.first ?? .nan, expected,
                Date().timeIntervalSince(start)))
        guard sum == [expected] else {
            throw BatonError(
                .nccl,
                "rank \(config.rank): allReduceSum over \(config.worldSize) ranks gave \(sum), expected [\(expected)]")
        }
    }

    /// One line on standard output, written at once (torchrun's workers write to pipes).
    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
