import BatonTensor
import Foundation

/// One value of a parsed tokenizer file, with the file name and the key path that led to it,
/// so that every parse failure can name the file, the field, what was expected and what was found.
struct JSONField {
    let value: Any?
    let file: String
    /// The path of the parent, and this field's key or index in it; `path` is only spelled out
    /// for error messages (building it for each of 300K merges would cost more than parsing).
    private let parentPath: String
    private let step: Step

    private enum Step {
        case root, key(String), index(Int)
    }

    private init(value: Any?, file: String, parentPath: String, step: Step) {
        self.value = value
        self.file = file
        self.parentPath = parentPath
        self.step = step
    }

    /// The key path from the file's top level, e.g. `model.merges[3]`.
    var path: String {
        switch step {
        case .root: return ""
        case .key(let key): return parentPath.isEmpty ? key : "\(parentPath).\(key)"
        case .index(let index): return "\(parentPath)[\(index)]"
        }
    }

    /// Parses `data` as the top-level JSON value of `file`.
    static func parse(_ data: Data, file: String) throws -> JSONField {
        do {
            let value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return JSONField(value: value, file: file, parentPath: "", step: .root)
        } catch {
            throw BatonError.invalidModel("\(file): malformed JSON (\(error.localizedDescription))")
        }
    }

    subscript(key: String) -> JSONField {
        let child = (value as? [String: Any])?[key]
        return JSONField(value: child, file: file, parentPath: path, step: .key(key))
    }

    /// True when the field is absent or JSON `null`.
    var isNull: Bool { value == nil || value is NSNull }

    /// The error for a tokenizer.json component (normalizer, pre_tokenizer, ...) at this field whose
    /// `type` Baton does not implement; `supported` lists the types it does.
    func unsupportedType(_ type: String, of component: String, supported: String) -> BatonError {
        .unsupported(
            "\(file): \(component) type \"\(type)\" at `\(path).type` is not supported (supported: \(supported))")
    }

    func failure(expected: String) -> BatonError {
        let found: String
        switch value {
        case nil: found = "nothing"
        case is NSNull: found = "null"
        case let s as String: found = "string \"\(s.prefix(60))\""
        case is [Any]: found = "an array"
        case is [String: Any]: found = "an object"
        case let other?: found = "\(other)".prefix(60).description
        }
        return .invalidModel("\(file): field `\(path)` expected \(expected), found \(found)")
    }

    func string() throws -> String {
        guard let s = value as? String else { throw failure(expected: "a string") }
        return s
    }

    func optionalString() throws -> String? { isNull ? nil : try string() }

    func bool(default fallback: Bool) throws -> Bool {
        if isNull { return fallback }
        if let b = value as? Bool { return b }
        throw failure(expected: "true or false")
    }

    func int() throws -> Int {
        // JSONSerialization gives NSNumber; its booleans report the Objective-C type "c".
        if let n = value as? NSNumber, n.objCType.pointee != 0x63, let i = Int(exactly: n.doubleValue) { return i }
        throw failure(expected: "an integer")
    }

    func optionalInt() throws -> Int? { isNull ? nil : try int() }

    func array() throws -> [JSONField] {
        guard let items = value as? [Any] else { throw failure(expected: "an array") }
        let here = path
        return items.enumerated().map { JSONField(value: $1, file: file, parentPath: here, step: .index($0)) }
    }

    /// The fields of an object, in no particular order.
    func members() throws -> [(key: String, field: JSONField)] {
        guard let object = value as? [String: Any] else { throw failure(expected: "an object") }
        let here = path
        return object.map { key, value in (key, JSONField(value: value, file: file, parentPath: here, step: .key(key)))
        }
    }

    /// An integer or a list of integers (generation_config's `eos_token_id` comes both ways).
    func intList() throws -> [Int] {
        if isNull { return [] }
        if value is [Any] { return try array().map { try $0.int() } }
        return [try int()]
    }

    /// A special token written either as a string or as `{"content": "..."}` (both exist in
    /// tokenizer_config.json files).
    func tokenContent() throws -> String? {
        if isNull { return nil }
        if value is [String: Any] { return try self["content"].string() }
        return try string()
    }
}
