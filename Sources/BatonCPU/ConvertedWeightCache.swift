import BatonTensor
import Foundation

/// fp32 copies of bf16/f16 matmul weights, so decode steps convert each weight once.
///
/// Keyed by storage identity, byte offset, shape and dtype. An entry holds its source storage
/// weakly: when the checkpoint mapping goes away the entry is stale and is dropped at the next
/// insertion. The copies are bounded by `byteLimit`, least recently used evicted first; a weight
/// larger than the limit is converted on every call. Weights are assumed immutable while cached;
/// `invalidate(_:)` drops a storage's entries when the backend writes into it.
final class ConvertedWeightCache: @unchecked Sendable {
    private struct Key: Hashable {
        let storage: ObjectIdentifier
        let byteOffset: Int
        let shape: Shape
        let dtype: DType
    }

    private final class Entry {
        weak var source: Storage?
        let converted: Tensor
        var lastUse: UInt64

        init(source: Storage, converted: Tensor, lastUse: UInt64) {
            self.source = source
            self.converted = converted
            self.lastUse = lastUse
        }
    }

    let byteLimit: Int
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]
    private var cachedBytes = 0
    private var clock: UInt64 = 0
    private var conversions = 0

    init(byteLimit: Int) {
        self.byteLimit = byteLimit
    }

    /// How many times a weight was converted (cache misses), for tests and reports.
    var conversionCount: Int { lock.withLock { conversions } }
    /// Bytes of fp32 copies held now.
    var bytesHeld: Int { lock.withLock { cachedBytes } }

    /// `weight` (bf16 or f16, host) as fp32: the cached copy, or a fresh conversion cached if it fits.
    func floatWeight(_ weight: Tensor, threads: Int) -> Tensor {
        let key = Key(storage: ObjectIdentifier(weight.storage), byteOffset: weight.byteOffset,
                      shape: weight.shape, dtype: weight.dtype)
        let hit: Tensor? = lock.withLock {
            guard let entry = entries[key], entry.source === weight.storage else { return nil }
            clock += 1
            entry.lastUse = clock
            return entry.converted
        }
        if let hit { return hit }

        // Convert outside the lock: other ranks' threads keep using the cache meanwhile.
        let converted = floatTensor(weight, threads: threads)
        return lock.withLock {
            conversions += 1
            if let entry = entries[key], entry.source === weight.storage { return entry.converted }  // another thread won
            let size = converted.byteCount
            guard size <= byteLimit else { return converted }
            dropStaleEntries()
            while cachedBytes + size > byteLimit, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                remove(oldest.key)
            }
            clock += 1
            if let replaced = entries[key] { cachedBytes -= replaced.converted.byteCount }
            entries[key] = Entry(source: weight.storage, converted: converted, lastUse: clock)
            cachedBytes += size
            return converted
        }
    }

    /// Drops every entry converted from `storage` (called when the backend writes into it).
    func invalidate(_ storage: Storage) {
        let id = ObjectIdentifier(storage)
        lock.withLock {
            for key in entries.keys where key.storage == id { remove(key) }
        }
    }

    /// Drops every entry.
    func removeAll() {
        lock.withLock {
            entries.removeAll()
            cachedBytes = 0
        }
    }

    private func dropStaleEntries() {
        for (key, entry) in entries where entry.source == nil { remove(key) }
    }

    private func remove(_ key: Key) {
        if let entry = entries.removeValue(forKey: key) { cachedBytes -= entry.converted.byteCount }
    }
}
