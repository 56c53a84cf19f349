import BatonTensor
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only memory mapping of a whole file; unmapped when the last tensor viewing it goes.
final class MappedFile: @unchecked Sendable {
    let address: UnsafeMutableRawPointer?
    let byteCount: Int

    init(path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw BatonError(.io, "\(path): cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw BatonError(.io, "\(path): cannot stat (\(String(cString: strerror(errno))))")
        }
        byteCount = Int(info.st_size)
        if byteCount == 0 {  // mmap rejects empty files; validation reports it as truncated
            address = nil
            return
        }
        let mapped = mmap(nil, byteCount, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let mapped, mapped != MAP_FAILED else {
            throw BatonError(.io, "\(path): cannot map \(byteCount) bytes (\(String(cString: strerror(errno))))")
        }
        address = mapped
    }

    deinit {
        if let address { munmap(address, byteCount) }
    }

    /// Linux's MADV_POPULATE_READ (5.14): map a range's pages now, reading them from disk if needed.
    static let populateRead: Int32 = 22
    /// Bytes each thread prefetches at a time.
    static let prefetchChunk = 8 << 20

    /// Faults in the pages under `tensor` (a host tensor, typically viewing a mapping) on several
    /// threads, so that loading spends the time (and the progress bar shows it) rather than the
    /// first forward pass. Each chunk is populated by the kernel (MADV_POPULATE_READ) or, where
    /// that is unknown, by reading one byte per page.
    static func prefetchPages(of tensor: Tensor) {
        guard tensor.device == .cpu, tensor.byteCount > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = Int(bitPattern: tensor.hostPointer) / page * page
        let end = Int(bitPattern: tensor.hostPointer) + tensor.byteCount
        let chunks = (end - first + prefetchChunk - 1) / prefetchChunk
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let lower = first + chunk * prefetchChunk, upper = min(lower + prefetchChunk, end)
            guard let base = UnsafeMutableRawPointer(bitPattern: lower) else { return }
            if madvise(base, upper - lower, populateRead) == 0 { return }
            var sum: UInt8 = 0
            for offset in stride(from: 0, to: upper - lower, by: page) {
                sum &+= base.load(fromByteOffset: offset, as: UInt8.self)
            }
            prefetchSink.store(sum)
        }
    }
}

/// Where page touches leave their sum, so the reads are not optimized away.
private let prefetchSink = PrefetchSink()

private final class PrefetchSink: @unchecked Sendable {
    private var value: UInt8 = 0
    private let lock = NSLock()
    func store(_ sum: UInt8) { lock.withLock { value &+= sum } }
}

/// One `.safetensors` file, memory-mapped and validated: an 8-byte little-endian header length,
/// a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}}` (offsets relative to the
/// data after the header), then the data. Tensors are host `Tensor`s viewing the mapping
/// (zero copy); the mapping lives as long as any of them.
public final class SafetensorsFile: @unchecked Sendable {
    /// Where one tensor lies in the file.
    public struct Entry: Sendable, Equatable {
        public let dtype: DType
        public let shape: Shape
        /// Absolute byte range in the file.
        public let byteRange: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    private let storage: Storage

    /// Maps and validates `path`; every inconsistency is a `BatonError` naming the file and tensor.
    public init(path: String) throws {
        self.path = path
        let mapping = try MappedFile(path: path)
        let fileSize = mapping.byteCount
        guard fileSize >= 8, let base = mapping.address else {
            throw BatonError.invalidModel(
                "\(path): truncated safetensors file (\(fileSize) bytes, "
                    + "expected at least the 8-byte header length)")
        }
        let headerLength = Int(
            UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)).clamped(toAtMost: UInt64(Int.max)))
        guard headerLength <= fileSize - 8 else {
            throw BatonError.invalidModel(
                "\(path): header length \(headerLength) exceeds the file "
                    + "(\(fileSize - 8) bytes after the length field)")
        }
        let dataStart = 8 + headerLength
        let header = Data(bytesNoCopy: base + 8, count: headerLength, deallocator: .none)
        entries = try Self.parseHeader(header, dataStart: dataStart, dataSize: fileSize - dataStart, path: path)
        storage = Storage(device: .cpu, address: UInt(bitPattern: base), byteCount: fileSize, owner: mapping)
    }

    /// Tensor names in the file, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// The tensor `name` viewing the mapped bytes, or nil if the file has none of that name.
    /// Writers pad the header so data is aligned; a tensor that is not aligned to its element
    /// size anyway is copied into aligned memory, since kernels read whole elements.
    public func tensor(named name: String) -> Tensor? {
        guard let entry = entries[name] else { return nil }
        let view = Tensor(
            storage: storage, byteOffset: entry.byteRange.lowerBound, shape: entry.shape, dtype: entry.dtype)
        if view.address % UInt(entry.dtype.byteSize) == 0 { return view }
        let copy = Tensor.zeros(entry.shape, dtype: entry.dtype)
        copy.hostPointer.copyMemory(from: view.hostPointer, byteCount: view.byteCount)
        return copy
    }

    /// Bytes of tensor data in the file.
    public var dataByteCount: Int { entries.values.reduce(0) { $0 + $1.byteRange.count } }

    private static func parseHeader(_ header: Data, dataStart: Int, dataSize: Int, path: String) throws -> [String:
        Entry]
    {
        func invalid(_ message: String) -> BatonError { BatonError.invalidModel("\(path): \(message)") }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: header)
        } catch {
            throw invalid("header is not valid JSON (\(header.count) bytes)")
        }
        guard let root = object as? [String: Any] else { throw invalid("header is not a JSON object") }
        var entries: [String: Entry] = [:]
        for (name, value) in root where name != "__metadata__" {
            guard let fields = value as? [String: Any] else { throw invalid("tensor \(name): entry is not an object") }
            guard let dtypeName = fields["dtype"] as? String else { throw invalid("tensor \(name): missing dtype") }
            guard let dtype = DType(safetensorsName: dtypeName) else {
                throw invalid(
                    "tensor \(name): dtype \(dtypeName) is not supported (expected BF16, F16, F32, I32 or I64)")
            }
            guard let dimensions = integers(fields["shape"]), dimensions.allSatisfy({ $0 >= 0 }) else {
                throw invalid("tensor \(name): shape must be a list of non-negative integers")
            }
            guard let offsets = integers(fields["data_offsets"]), offsets.count == 2 else {
                throw invalid("tensor \(name): data_offsets must be [begin, end]")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw invalid(
                    "tensor \(name): data_offsets [\(begin), \(end)] outside the data region of \(dataSize) bytes")
            }
            var expected = dtype.byteSize
            for dimension in dimensions {
                let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
                guard !overflow else { throw invalid("tensor \(name): shape \(dimensions) is too large") }
                expected = product
            }
            guard expected == end - begin else {
                throw invalid(
                    "tensor \(name): shape \(dimensions) \(dtypeName) needs \(expected) bytes "
                        + "but data_offsets span \(end - begin)")
            }
            entries[name] = Entry(
                dtype: dtype, shape: Shape(dimensions), byteRange: (dataStart + begin)..<(dataStart + end))
        }
        // No two tensors may share bytes (empty tensors occupy none).
        let ordered = entries.filter { !$0.value.byteRange.isEmpty }.sorted {
            $0.value.byteRange.lowerBound < $1.value.byteRange.lowerBound
        }
        for (previous, next) in zip(ordered, ordered.dropFirst())
        where next.value.byteRange.lowerBound < previous.value.byteRange.upperBound {
            throw invalid("tensors \(previous.key) and \(next.key) overlap in the data region")
        }
        return entries
    }

    /// A JSON list of integers (JSONSerialization yields NSNumber), or nil.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let list = value as? [Any] else { return nil }
        var result: [Int] = []
        for element in list {
            guard let number = element as? NSNumber, number.doubleValue == number.doubleValue.rounded(),
                abs(number.doubleValue) < 9e15
            else { return nil }
            result.append(number.intValue)
        }
        return result
    }
}

extension UInt64 {
    fileprivate func clamped(toAtMost limit: UInt64) -> UInt64 { Swift.min(self, limit) }
}

/// A model directory's safetensors: one `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` (`weight_map: {tensor: shard file}`).
public final class SafetensorsCheckpoint: @unchecked Sendable {
    public let directory: URL
    /// Shard file name for each tensor name.
    public let fileForTensor: [String: String]
    /// Open shards by file name.
    public let files: [String: SafetensorsFile]
    /// For a renamed view (`renamed(_:)`): each tensor's name in its shard; empty when names are the files'.
    private let nameInFile: [String: String]

    /// Opens every shard of `directory`, validating each header.
    public init(directory: URL) throws {
        self.directory = directory
        let manager = FileManager.default
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        var shardNames: [String]
        var declared: [String: String]?
        if let data = manager.contents(atPath: indexURL.path) {
            guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let weightMap = root["weight_map"] as? [String: String]
            else {
                throw BatonError.invalidModel(
                    "\(indexURL.path): expected a JSON object with `weight_map` {tensor: file}")
            }
            declared = weightMap
            shardNames = Array(Set(weightMap.values)).sorted()
            for shard in shardNames where !manager.fileExists(atPath: directory.appendingPathComponent(shard).path) {
                throw BatonError(
                    .io, "\(indexURL.path): shard \(shard) listed in weight_map is missing from \(directory.path)")
            }
        } else if manager.fileExists(atPath: directory.appendingPathComponent("model.safetensors").path) {
            shardNames = ["model.safetensors"]
        } else {
            let listing = (try? manager.contentsOfDirectory(atPath: directory.path)) ?? []
            shardNames = listing.filter { $0.hasSuffix(".safetensors") }.sorted()
            guard !shardNames.isEmpty else {
                throw BatonError(
                    .io,
                    "\(directory.path): no model.safetensors, model.safetensors.index.json "
                        + "or *.safetensors file")
            }
        }
        var files: [String: SafetensorsFile] = [:]
        for shard in shardNames {
            files[shard] = try SafetensorsFile(path: directory.appendingPathComponent(shard).path)
        }
        var map: [String: String] = [:]
        if let declared {
            for (tensor, shard) in declared {
                guard files[shard]?.entries[tensor] != nil else {
                    throw BatonError.invalidModel(
                        "\(directory.appendingPathComponent(shard).path): tensor \(tensor) "
                            + "listed in model.safetensors.index.json is not in the shard")
                }
                map[tensor] = shard
            }
        } else {
            for (shard, file) in files { for name in file.entries.keys { map[name] = shard } }
        }
        self.files = files
        self.fileForTensor = map
        self.nameInFile = [:]
        if declared != nil {
            describedLocation = indexURL.path
        } else if files.count == 1, let only = files.values.first {
            describedLocation = only.path
        } else {
            describedLocation = directory.path
        }
    }

    private init(
        directory: URL, fileForTensor: [String: String], files: [String: SafetensorsFile],
        nameInFile: [String: String], describedLocation: String
    ) {
        self.directory = directory
        self.fileForTensor = fileForTensor
        self.files = files
        self.nameInFile = nameInFile
        self.describedLocation = describedLocation
    }

    /// The same shards with every tensor under the name `rename` gives it (e.g. transformers 5's
    /// `model.language_model.norm.weight` as `model.norm.weight`); errors still point at the files.
    public func renamed(_ rename: (String) -> String) -> SafetensorsCheckpoint {
        var map: [String: String] = [:], original: [String: String] = [:]
        for (name, shard) in fileForTensor {
            let newName = rename(name)
            map[newName] = shard
            original[newName] = nameInFile[name] ?? name
        }
        return SafetensorsCheckpoint(
            directory: directory, fileForTensor: map, files: files, nameInFile: original,
            describedLocation: describedLocation)
    }

    /// All tensor names, sorted.
    public var names: [String] { fileForTensor.keys.sorted() }

    /// Bytes of tensor data over all shards.
    public var dataByteCount: Int { files.values.reduce(0) { $0 + $1.dataByteCount } }

    /// Where errors about a missing tensor point: the index if sharded, else the single file.
    public let describedLocation: String

    /// The tensor `name` (a host view of the mapped bytes), or nil if the checkpoint lacks it.
    public func tensor(named name: String) -> Tensor? {
        guard let shard = fileForTensor[name] else { return nil }
        return files[shard]?.tensor(named: nameInFile[name] ?? name)
    }

    /// The tensor `name`; a `BatonError` naming the tensor and the checkpoint if absent.
    public func require(_ name: String) throws -> Tensor {
        guard let tensor = tensor(named: name) else {
            throw BatonError.invalidModel("tensor \(name) is missing from \(describedLocation)")
        }
        return tensor
    }
}
