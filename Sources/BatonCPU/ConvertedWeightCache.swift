import BatonTensor
import Foundation

/// fp32 copies of bf16/f16 matmul weights, so decode steps convert each weight once.
///
/// Keyed by storage identity, byte offset, shape and dtype. An entry holds its source storage
/// weakly: when the checkpoint mapping goes away the entry is stale and is dropped at the next
/// miss. The copies are bounded by `byteLimit`. Live entries are never evicted: once the cache
/// is full, further weights are not cached and matmul converts them block by block on the fly
/// (a model's layers are used in a cycle, where evicting the least recently used copy would
/// miss on every call). Weights are assumed immutable while cached; `invalidate(_:)` drops a
/// storage's entries when the backend writes into it.
final class ConvertedWeightCache: @unchecked Sendable {
    private struct Key: Hashable {
        let storage: ObjectIdentifier
        let byteOffset: Int
        let shape: Shape
        let dtype: DType
    }

    private struct Entry {
        weak var source: Storage?
        let converted: Tensor
    }

    let byteLimit: Int
    private let lock = NSLock()
    private var entries: [Key: Entry] = [:]
    private var cachedBytes = 0
    private var conversions = 0

    init(byteLimit: Int) {
        self.byteLimit = byteLimit
    }

    /// How many weights were converted into the cache (misses that fit), for tests and reports.
    var conversionCount: Int { lock.withLock { conversions } }
    /// Bytes of fp32 copies held now.
    var bytesHeld: Int { lock.withLock { cachedBytes } }

    /// `weight` (bf16 or f16, host) as fp32: the cached copy, or a fresh conversion that is cached;
    /// nil when the copy does not fit in what is left of `byteLimit`.
    func floatWeight(_ weight: Tensor, threads: Int) throws -> Tensor? {
        let key = Key(
            storage: ObjectIdentifier(weight.storage), byteOffset: weight.byteOffset,
            shape: weight.shape, dtype: weight.dtype)
        let size = weight.elementCount * DType.f32.byteSize
        let cached: Tensor?? = lock.withLock {
            if let entry = entries[key], entry.source === weight.storage { return .some(entry.converted) }
            dropStaleEntries()
            return cachedBytes + size <= byteLimit ? .some(nil) : .none
        }
        switch cached {
        case .none: return nil  // no room
        case .some(.some(let hit)): return hit
        case .some(.none): break
        }

        // Convert outside the lock: other ranks' threads keep using the cache meanwhile.
        let converted = try floatTensor(weight, threads: threads)
        return lock.withLock {
            // Another thread may have converted it meanwhile: keep the first.
            if let entry = entries[key], entry.source === weight.storage { return entry.converted }
            if let stale = entries.removeValue(forKey: key) { cachedBytes -= stale.converted.byteCount }
            conversions += 1
            // Another weight may have taken the room meanwhile: then this copy serves this call only.
            guard cachedBytes + size <= byteLimit else { return converted }
            entries[key] = Entry(source: weight.storage, converted: converted)
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
