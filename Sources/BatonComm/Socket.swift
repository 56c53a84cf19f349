#if canImport(Glibc)
    import Glibc
#endif
import BatonTensor
import Foundation

/// A blocking IPv4 TCP socket with deadlines, just enough for the rendezvous and the torch store
/// client. Every failure is a `BatonError` naming the call and errno's text.
final class Socket {
    private(set) var descriptor: Int32

    private init(_ descriptor: Int32) { self.descriptor = descriptor }

    deinit { close() }

    func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }

    static func failure(_ call: String) -> BatonError {
        BatonError(.communication, "\(call): \(String(cString: strerror(errno)))")
    }

    /// `address` as an IPv4 socket address (numeric or a host name).
    static func socketAddress(_ address: String, port: Int) throws -> sockaddr_in {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address, nil, &hints, &result) == 0, let first = result else {
            throw BatonError(.communication, "rendezvous: cannot resolve MASTER_ADDR '\(address)' to an IPv4 address")
        }
        defer { freeaddrinfo(result) }
        var socketAddress = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        return socketAddress
    }

    static func listen(address: String, port: Int) throws -> Socket {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw failure("socket") }
        let socket = Socket(descriptor)
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var bindAddress = try socketAddress(address, port: port)
        let bound = withUnsafePointer(to: &bindAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            throw BatonError(.communication, "rendezvous: bind \(address):\(port): \(String(cString: strerror(errno)))")
        }
        guard Glibc.listen(descriptor, 128) == 0 else { throw failure("listen") }
        return socket
    }

    func boundPort() throws -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let status = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard status == 0 else { throw Self.failure("getsockname") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether bytes (or the peer's close) arrived before the deadline.
    func waitForInput(until deadline: Date) throws -> Bool {
        try wait(for: Int16(POLLIN), until: deadline)
    }

    /// Waits until `events` are ready or the deadline passes (false then).
    private func wait(for events: Int16, until deadline: Date) throws -> Bool {
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return false }
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32(min(remaining, 1) * 1000))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { throw Self.failure("poll") }
        }
    }

    func accept(until deadline: Date) throws -> Socket? {
        guard try wait(for: Int16(POLLIN), until: deadline) else { return nil }
        let peer = Glibc.accept(descriptor, nil, nil)
        guard peer >= 0 else { throw Self.failure("accept") }
        return Socket(peer)
    }

    /// Connects, retrying while the server (rank 0, or torchrun's store) is not listening yet.
    /// `who` starts the timeout error, e.g. "rendezvous: rank 3 could not connect to rank 0".
    static func connect(address: String, port: Int, until deadline: Date, who: String) throws -> Socket {
        var target = try socketAddress(address, port: port)
        while true {
            let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard descriptor >= 0 else { throw failure("socket") }
            let socket = Socket(descriptor)
            let status = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if status == 0 { return socket }
            socket.close()
            if Date() >= deadline {
                throw BatonError(.timeout, "\(who) at \(address):\(port) (\(String(cString: strerror(errno))))")
            }
            usleep(50_000)
        }
    }

    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { throw Self.failure("send") }
            offset += sent
        }
    }

    func read(_ count: Int, until deadline: Date) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            guard try wait(for: Int16(POLLIN), until: deadline) else {
                throw BatonError(.timeout, "rendezvous: read timed out after \(offset) of \(count) bytes")
            }
            let received = bytes[offset...].withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received < 0 && errno == EINTR { continue }
            guard received > 0 else {
                throw BatonError(
                    .communication, "rendezvous: peer closed the connection after \(offset) of \(count) bytes")
            }
            offset += received
        }
        return bytes
    }

    /// Integers travel as 8-byte little-endian words.
    func writeIntegers(_ values: [Int]) throws {
        try write(values.flatMap { value in withUnsafeBytes(of: Int64(value).littleEndian) { Array($0) } })
    }

    func readIntegers(_ count: Int, until deadline: Date) throws -> [Int] {
        let bytes = try read(count * 8, until: deadline)
        return (0..<count).map { index in
            Int(
                bytes[index * 8..<index * 8 + 8].enumerated().reduce(Int64(0)) {
                    $0 | Int64($1.element) << (8 * $1.offset)
                })
        }
    }
}
