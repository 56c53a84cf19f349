import BatonTensor
import Foundation

/// A client of PyTorch's `TCPStore`, the key-value store that torchrun's agent serves on
/// MASTER_ADDR:MASTER_PORT and that PyTorch workers join as clients (`init_process_group` with
/// `TORCHELASTIC_USE_AGENT_STORE=True`). Baton's ranks meet there instead of binding that port.
///
/// The wire protocol is PyTorch's (torch/csrc/distributed/c10d/TCPStore.cpp, TCPStoreBackend.hpp;
/// the same for the libuv server, the default since torch 2.4, and the legacy one): a request is
/// one `QueryType` byte and its arguments; a string or byte vector is its length as a u64 then the
/// bytes; integers are native (little-endian) words. A new connection first sends VALIDATE with a
/// u32 magic number (servers reject a client that does not) and then PINGs a nonce back, as
/// torch's own client does. Keys get torch's "/" prefix, so `store.get("k")` in Python reads what
/// `set("k", ...)` wrote here.
///
/// Every blocking call has a deadline; a timeout is a `BatonError(.timeout)` naming the keys.
/// Calls on one client are serialized (one request in flight per connection, as the protocol needs).
public final class TorchStoreClient: @unchecked Sendable {
    public let address: String
    public let port: Int
    private let socket: Socket
    private let lock = Lock()

    /// Request codes, in the order of torch's `QueryType` enum (VALIDATE = 0 ... PING = 13).
    enum Query: UInt8 {
        case validate = 0, set, compareSet, get, add, check, wait, getNumKeys, deleteKey, append, multiGet, multiSet,
            cancelWait, ping
    }

    static let validationMagic: UInt32 = 0x3C85_F7CE
    static let keyPrefix = "/"
    /// Largest value this client accepts (the rendezvous exchanges a few hundred bytes).
    static let maximumValueBytes = 64 << 20

    /// Connects to the store, retrying until `timeout` while the server is not up yet, then
    /// validates and pings. `who` names the caller in errors ("rank 3").
    public init(address: String, port: Int, timeout: Double, who: String = "this process") throws {
        guard (1...65535).contains(port) else {
            throw BatonError.invalidArgument("torch store: port \(port) is not a TCP port (MASTER_PORT)")
        }
        self.address = address
        self.port = port
        let deadline = Date().addingTimeInterval(timeout)
        socket = try Socket.connect(
            address: address, port: port, until: deadline,
            who:
                "torch store: \(who) could not connect to torchrun's store (MASTER_ADDR:MASTER_PORT) within \(timeout) s"
        )
        var hello = Request(.validate)
        hello.append(Self.validationMagic)
        try socket.write(hello.bytes)
        let nonce = UInt32(truncatingIfNeeded: getpid())
        var ping = Request(.ping)
        ping.append(nonce)
        try socket.write(ping.bytes)
        let echoed: UInt32 = try readValue(until: deadline, during: "the ping after connecting")
        guard echoed == nonce else {
            throw BatonError(
                .communication,
                "torch store at \(address):\(port) answered the ping with \(echoed), expected \(nonce): "
                    + "is MASTER_PORT a torch TCPStore (torch >= 2.2)?")
        }
    }

    deinit { socket.close() }

    /// Stores `value` under `key` (replacing any value); wakes the clients waiting for it.
    public func set(_ key: String, _ value: [UInt8]) throws {
        var request = Request(.set)
        request.append(Self.keyPrefix + key)
        request.append(value)
        try lock.withLock { try socket.write(request.bytes) }
    }

    /// The value of `key`, waiting up to `timeout` seconds for some client to set it.
    public func get(_ key: String, timeout: Double) throws -> [UInt8] {
        try lock.withLock {
            try waitLocked([key], timeout: timeout)
            var request = Request(.get)
            request.append(Self.keyPrefix + key)
            try socket.write(request.bytes)
            return try readVector(until: Date().addingTimeInterval(timeout), during: "get '\(key)'")
        }
    }

    /// Adds `delta` to the integer counter `key` (created at 0) and returns the new value; torch
    /// keeps counters as decimal text, so `get` of a counter returns its digits.
    @discardableResult
    public func add(_ key: String, _ delta: Int64, timeout: Double = 60) throws -> Int64 {
        var request = Request(.add)
        request.append(Self.keyPrefix + key)
        request.append(UInt64(bitPattern: delta))
        return try lock.withLock {
            try socket.write(request.bytes)
            let value: UInt64 = try readValue(until: Date().addingTimeInterval(timeout), during: "add to '\(key)'")
            return Int64(bitPattern: value)
        }
    }

    /// Whether every key exists now (no waiting).
    public func check(_ keys: [String], timeout: Double = 60) throws -> Bool {
        var request = Request(.check)
        request.append(keys: keys)
        return try lock.withLock {
            try socket.write(request.bytes)
            let answer: UInt8 = try readValue(until: Date().addingTimeInterval(timeout), during: "check \(keys)")
            guard answer <= 1 else {
                throw BatonError(.communication, "torch store: check \(keys) got answer \(answer), expected 0 or 1")
            }
            return answer == 0  // READY
        }
    }

    /// Waits until every key exists. After `timeout` seconds the wait is cancelled on the server
    /// and a `.timeout` error names the keys still missing.
    public func wait(_ keys: [String], timeout: Double) throws {
        try lock.withLock { try waitLocked(keys, timeout: timeout) }
    }

    private func waitLocked(_ keys: [String], timeout: Double) throws {
        var request = Request(.wait)
        request.append(keys: keys)
        try socket.write(request.bytes)
        let stopWaiting: UInt8 = 0, waitCanceled: UInt8 = 1
        if try socket.waitForInput(until: Date().addingTimeInterval(timeout)) {
            let answer: UInt8 = try readValue(until: Date().addingTimeInterval(timeout), during: "wait for \(keys)")
            guard answer == stopWaiting else {
                throw BatonError(.communication, "torch store: wait for \(keys) got answer \(answer)")
            }
            return
        }
        // Cancel, so the connection can be used again: the server answers WAIT_CANCELED, possibly
        // after a STOP_WAITING that crossed our cancel on the wire.
        try socket.write(Request(.cancelWait).bytes)
        let deadline = Date().addingTimeInterval(10)
        var answer: UInt8 = try readValue(until: deadline, during: "cancelling the wait for \(keys)")
        if answer == stopWaiting { answer = try readValue(until: deadline, during: "cancelling the wait for \(keys)") }
        guard answer == waitCanceled else {
            throw BatonError(.communication, "torch store: cancelling the wait for \(keys) got answer \(answer)")
        }
        throw BatonError(
            .timeout,
            "torch store at \(address):\(port): \(keys.count == 1 ? "key" : "keys") "
                + keys.map { "'\($0)'" }.joined(separator: ", ") + " not set within \(String(format: "%g", timeout)) s")
    }

    // MARK: - wire

    /// One request: the query byte, then its arguments in torch's encoding.
    struct Request {
        private(set) var bytes: [UInt8]
        init(_ query: Query) { bytes = [query.rawValue] }

        mutating func append<Value: FixedWidthInteger>(_ value: Value) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        mutating func append(_ vector: [UInt8]) {
            append(UInt64(vector.count))
            bytes.append(contentsOf: vector)
        }
        mutating func append(_ string: String) { append(Array(string.utf8)) }
        /// A key list (CHECK, WAIT): the count, then each prefixed key.
        mutating func append(keys: [String]) {
            append(UInt64(keys.count))
            for key in keys { append(TorchStoreClient.keyPrefix + key) }
        }
    }

    private func readValue<Value: FixedWidthInteger>(until deadline: Date, during what: String) throws -> Value {
        let bytes = try readBytes(MemoryLayout<Value>.size, until: deadline, during: what)
        return bytes.reversed().reduce(Value(0)) { $0 << 8 | Value($1) }
    }

    private func readVector(until deadline: Date, during what: String) throws -> [UInt8] {
        let count: UInt64 = try readValue(until: deadline, during: what)
        guard count <= UInt64(Self.maximumValueBytes) else {
            throw BatonError(
                .communication, "torch store: \(what) announced \(count) bytes (more than \(Self.maximumValueBytes))")
        }
        return try readBytes(Int(count), until: deadline, during: what)
    }

    private func readBytes(_ count: Int, until deadline: Date, during what: String) throws -> [UInt8] {
        do {
            return try socket.read(count, until: deadline)
        } catch let error as BatonError {
            throw BatonError(error.kind, "torch store at \(address):\(port), \(what): \(error.message)")
        }
    }
}
