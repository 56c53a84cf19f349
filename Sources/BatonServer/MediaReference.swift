import Crypto
import Foundation

/// Where the bytes of an `image_url` or `video_url` part are: a file on this machine (a path or a
/// `file://` URL, read with the server's permissions) or the bytes themselves (a base64 `data:`
/// URL). Nothing is fetched from the network: a server that downloads what requests name can be
/// made to reach hosts its clients cannot, and ffmpeg would do the downloading.
enum MediaReference {
    case file(URL)
    case inline(Data, fileExtension: String)

    /// Reads `url` as the client gave it; `param` names the field in errors.
    static func parse(_ url: String, param: String) throws(APIError) -> MediaReference {
        let lowered = url.lowercased()
        if lowered.hasPrefix("http://") || lowered.hasPrefix("https://") {
            throw .invalidRequest(
                "Baton does not fetch images or videos from the network (\(url.prefix(80))): give a file path on "
                    + "the server, a file:// URL or a base64 data: URL",
                param: param, code: "invalid_value")
        }
        if lowered.hasPrefix("data:") { return try inline(url, param: param) }
        let path: String
        if lowered.hasPrefix("file://") {
            guard let parsed = URL(string: url), parsed.host == nil || parsed.host == "" || parsed.host == "localhost"
            else {
                throw .invalidRequest(
                    "'\(url)' is not a file:// URL of this machine (file:///absolute/path)", param: param,
                    code: "invalid_value")
            }
            path = parsed.path
        } else if let scheme = url.range(of: "://"), !url[..<scheme.lowerBound].contains("/") {
            throw .invalidRequest(
                "unsupported URL scheme '\(url[..<scheme.lowerBound])': give a file path, a file:// URL or a data: URL",
                param: param, code: "invalid_value")
        } else {
            path = url
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw .invalidRequest("\(path): no such file on the server", param: param, code: "invalid_value")
        }
        return .file(URL(fileURLWithPath: path))
    }

    /// `data:[<media type>][;base64],<data>`: only base64, the encoding clients use for binary files.
    private static func inline(_ url: String, param: String) throws(APIError) -> MediaReference {
        guard let comma = url.firstIndex(of: ",") else {
            throw .invalidRequest("a data: URL needs a ',' before its data", param: param, code: "invalid_value")
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].split(separator: ";").map(String.init)
        guard header.contains(where: { $0.lowercased() == "base64" }) else {
            throw .invalidRequest(
                "a data: URL for an image or video must be base64 (data:image/png;base64,...)", param: param,
                code: "invalid_value")
        }
        guard
            let bytes = Data(base64Encoded: String(url[url.index(after: comma)...]), options: .ignoreUnknownCharacters),
            !bytes.isEmpty
        else {
            throw .invalidRequest("the data: URL's base64 data does not decode", param: param, code: "invalid_value")
        }
        // The media type's subtype as the file's extension, a hint for ffmpeg's format probe.
        let mediaType = header.first.flatMap { $0.contains("/") ? $0 : nil } ?? ""
        let subtype = mediaType.split(separator: "/").last.map { $0.lowercased() } ?? ""
        let fileExtension = subtype.isEmpty || !subtype.allSatisfy({ $0.isLetter || $0.isNumber }) ? "bin" : subtype
        return .inline(bytes, fileExtension: fileExtension)
    }

    /// SHA-256 of the bytes, hex: the content part of the visual cache's key. Files are read in
    /// pieces, so a long video is never in memory whole.
    func contentDigest() throws -> String {
        var hasher = SHA256()
        switch self {
        case .inline(let bytes, _):
            hasher.update(data: bytes)
        case .file(let url):
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            while let piece = try handle.read(upToCount: 4 << 20), !piece.isEmpty { hasher.update(data: piece) }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// A path ffmpeg can read: the file, or the inline bytes written to a file of `temporaryFiles`.
    func fileURL(in temporaryFiles: TemporaryFiles) throws -> URL {
        switch self {
        case .file(let url): return url
        case .inline(let bytes, let fileExtension): return try temporaryFiles.write(bytes, fileExtension: fileExtension)
        }
    }
}

/// Files written for one request (the bytes of its `data:` URLs), removed when the last holder
/// lets go: the request's job holds them, since a planned video is decoded only when it runs.
final class TemporaryFiles: @unchecked Sendable {
    private let lock = NSLock()
    private var files: [URL] = []

    /// Writes `bytes` to a new file in the temporary folder.
    func write(_ bytes: Data, fileExtension: String) throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-serve-\(UUID().uuidString).\(fileExtension)")
        try bytes.write(to: file)
        lock.withLock { files.append(file) }
        return file
    }

    deinit {
        for file in files { try? FileManager.default.removeItem(at: file) }
    }
}
