import Foundation
import HTTPTypes
import Hummingbird

/// An error answered as OpenAI does: an HTTP status and the body
/// `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// 400: a malformed body or a field out of range, naming the field in `param`.
    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// 404: the request names a model this server does not serve.
    public static func modelNotFound(_ name: String, served: String) -> APIError {
        APIError(
            status: .notFound, message: "The model '\(name)' does not exist; this server serves '\(served)'",
            type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    /// 401: `--api-key` is set and the request's `Authorization: Bearer` does not match it.
    public static let unauthorized = APIError(
        status: .unauthorized,
        message: "Incorrect or missing API key: send 'Authorization: Bearer <key>' with the server's --api-key",
        type: "invalid_request_error", code: "invalid_api_key")

    /// 503: the queue (`--max-queue`) is full.
    public static func queueFull(_ limit: Int) -> APIError {
        APIError(
            status: .serviceUnavailable,
            message:
                "The server is busy: \(limit) request\(limit == 1 ? "" : "s") already wait (--max-queue \(limit)); retry later",
            type: "server_error", code: "queue_full")
    }

    /// 503: under torchrun, parallel methods cannot run: a parallel request failed in a way that
    /// leaves the job without a full group of ranks (one died, a collective timed out), or the
    /// other ranks were told to exit; dense requests still run on rank 0.
    public static func ranksUnavailable(_ reason: String) -> APIError {
        APIError(
            status: .serviceUnavailable, message: "parallel methods are unavailable: \(reason)",
            type: "server_error", code: "ranks_unavailable")
    }

    /// 500: the engine failed on a request that passed every check.
    public static func engineFailure(_ error: any Error) -> APIError {
        APIError(status: .internalServerError, message: "generation failed: \(error)", type: "server_error")
    }

    /// The JSON body OpenAI's clients parse.
    public var body: ByteBuffer {
        var fields: [String: Any] = ["message": message, "type": type]
        fields["param"] = param ?? NSNull()
        fields["code"] = code ?? NSNull()
        let data = (try? JSONSerialization.data(withJSONObject: ["error": fields], options: [.sortedKeys])) ?? Data()
        return ByteBuffer(bytes: data)
    }

    /// This error as an HTTP response (503s say when to retry).
    public var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if status == .serviceUnavailable { headers[.retryAfter] = "1" }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
    }
}

extension APIError: HTTPResponseError {
    public func response(from request: Request, context: some RequestContext) throws -> Response { response }
}

extension APIError {
    /// A JSON decoding failure as a 400 naming the field, the way OpenAI names it (`messages.0.content`).
    static func decoding(_ error: any Error) -> APIError {
        guard let error = error as? DecodingError else {
            return .invalidRequest("the body is not valid JSON: \(error)")
        }
        // Keys as the client wrote them: the decoder's camelCase names back in snake_case.
        func snakeCase(_ key: String) -> String {
            key.reduce(into: "") { name, character in
                if character.isUppercase { name += "_" + character.lowercased() } else { name.append(character) }
            }
        }
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map(String.init) ?? snakeCase($0.stringValue) }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let name = path(context.codingPath + [key])
            return .invalidRequest(
                "Missing required parameter: '\(name)'.", param: name, code: "missing_required_parameter")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let name = path(context.codingPath)
            return .invalidRequest(
                "Invalid type for '\(name)': \(context.debugDescription)", param: name, code: "invalid_type")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return .invalidRequest(
                    "We could not parse the JSON body of your request: \(context.underlyingError.map { "\($0)" } ?? context.debugDescription)"
                )
            }
            let name = path(context.codingPath)
            return .invalidRequest(
                "Invalid value for '\(name)': \(context.debugDescription)", param: name, code: "invalid_value")
        @unknown default:
            return .invalidRequest("the body could not be decoded: \(error)")
        }
    }
}
