import BatonTensor
import CCUDA
import Foundation

/// `BATON_PROFILE=1`: device time per kernel, GEMM shape and copy, measured with a pair of events
/// around each launch on the compute stream (no synchronisation until `profileReport`), so a
/// benchmark can say where a forward pass spends its time without an external profiler.
final class LaunchProfile: @unchecked Sendable {
    private struct Pending {
        let name: String
        let start, end: CUevent?
    }

    private let lock = NSLock()
    private var pending: [Pending] = []
    private var totals: [String: (milliseconds: Double, launches: Int)] = [:]

    /// Queues `body` between two events named `name`.
    func measure(_ name: String, driver: BatonCUDADriver, stream: CUstream, _ body: () throws -> Void) throws {
        var start: CUevent?, end: CUevent?
        try driver.check(driver.cuEventCreate(&start, UInt32(BATON_CU_EVENT_DEFAULT)), "cuEventCreate (profile)")
        try driver.check(driver.cuEventCreate(&end, UInt32(BATON_CU_EVENT_DEFAULT)), "cuEventCreate (profile)")
        try driver.check(driver.cuEventRecord(start, stream), "cuEventRecord (profile)")
        try body()
        try driver.check(driver.cuEventRecord(end, stream), "cuEventRecord (profile)")
        lock.withLock { pending.append(Pending(name: name, start: start, end: end)) }
    }

    /// Adds the finished launches' times to the totals (the stream must be synchronised).
    func collect(driver: BatonCUDADriver) throws {
        let finished = lock.withLock { () -> [Pending] in
            defer { pending = [] }; return pending
        }
        for launch in finished {
            var milliseconds: Float = 0
            try driver.check(
                driver.cuEventElapsedTime(&milliseconds, launch.start, launch.end),
                "cuEventElapsedTime (profile)")
            _ = driver.cuEventDestroy(launch.start)
            _ = driver.cuEventDestroy(launch.end)
            lock.withLock {
                let total = totals[launch.name, default: (0, 0)]
                totals[launch.name] = (total.milliseconds + Double(milliseconds), total.launches + 1)
            }
        }
    }

    /// The totals since the last call, longest first, as a markdown table; then starts afresh.
    func table(title: String) -> String {
        let rows = lock.withLock { () -> [(String, Double, Int)] in
            defer { totals = [:] }
            return totals.map { ($0.key, $0.value.milliseconds, $0.value.launches) }.sorted { $0.1 > $1.1 }
        }
        let sum = rows.reduce(0) { $0 + $1.1 }
        var lines = [
            "\(title): device time by launch (BATON_PROFILE=1), \(String(format: "%.1f", sum)) ms in all",
            "| launch | ms | share | launches |", "| --- | ---: | ---: | ---: |"
        ]
        for (name, milliseconds, launches) in rows {
            lines.append(
                String(
                    format: "| %@ | %.2f | %.1f%% | %d |", name, milliseconds,
                    sum > 0 ? 100 * milliseconds / sum : 0, launches))
        }
        return lines.joined(separator: "\n")
    }
}

extension CUDABackend {
    /// Runs `body` (one launch or copy on `stream`) inside the profile when `BATON_PROFILE` is on.
    func profiled(_ name: @autoclosure () -> String, _ body: () throws -> Void) throws {
        guard let profile else { return try body() }
        try profile.measure(name(), driver: driver, stream: stream, body)
    }

    /// With `BATON_PROFILE=1`: synchronises, then returns the device time per launch name since the
    /// previous report as a markdown table headed by `title`; nil when profiling is off.
    public func profileReport(title: String) throws -> String? {
        guard let profile else { return nil }
        try synchronize()
        try profile.collect(driver: driver)
        return profile.table(title: title)
    }
}
