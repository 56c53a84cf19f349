import BatonTensor
import Glibc

/// A one-line progress bar on standard error for long work (loading checkpoints, benchmarks,
/// evals). Redraws in place on a terminal; prints a line at each quarter otherwise, so logs stay short.
public final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int
    private let unit: ProgressUnit
    private let interactive: Bool
    private var lastDrawn = -1
    private let start = MonotonicClock.now()

    public enum ProgressUnit: Sendable { case bytes, items }

    public init(label: String, total: Int, unit: ProgressUnit = .items) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.interactive = isatty(STDERR_FILENO) != 0
    }

    public func update(_ done: Int) {
        let percent = min(100, done * 100 / total)
        if interactive {
            if percent == lastDrawn && done < total { return }
            lastDrawn = percent
            let width = 30
            let filled = width * percent / 100
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            write("\r\(label) [\(bar)] \(percent)% \(format(done))/\(format(total))\(done >= total ? "\n" : "")")
        } else {
            let quarter = percent / 25
            if quarter == lastDrawn { return }
            lastDrawn = quarter
            write(
                "\(label): \(percent)% (\(format(done))/\(format(total)), \(String(format1(MonotonicClock.now() - start)))s)\n"
            )
        }
    }

    private func format(_ value: Int) -> String {
        switch unit {
        case .items: return String(value)
        case .bytes: return formatBytes(value)
        }
    }

    private func write(_ text: String) {
        standardError(text)
    }
}

/// One decimal place without Foundation's formatter.
func format1(_ x: Double) -> String {
    let scaled = (x * 10).rounded()
    return "\(Int(scaled) / 10).\(abs(Int(scaled)) % 10)"
}

/// Writes `text` to standard error unbuffered.
public func standardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in _ = Glibc.write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}
