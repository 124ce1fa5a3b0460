import Foundation

// The simulator's one mapping of failures to Deribit's wire errors (code, message, data).

struct RPCError: Error {
    var code: Int
    var message: String
    var data: J?

    static let parseError = RPCError(code: -32700, message: "Parse error")
    static let invalidRequest = RPCError(code: -32600, message: "Invalid Request")
    /// Deribit answers a frame over 32 kB with -32600 and no id.
    static let requestTooLarge = RPCError(code: -32600, message: "request entity too large")
    static let methodNotFound = RPCError(code: -32601, message: "Method not found")
    static let invalidParamsObject = invalidParams("params", "must be an object")
    static let unauthorized = RPCError(code: 13009, message: "unauthorized")
    static let invalidCredentials = RPCError(code: 13004, message: "invalid_credentials")
    static let rawNeedsAuth = RPCError(code: 13778, message: "raw_subscriptions_not_available_for_unauthorized")
    static let tooManyRequests = RPCError(code: 10028, message: "too_many_requests")
    static let orderNotFound = RPCError(code: 10004, message: "order_not_found")
    static let notOpenOrder = RPCError(code: 11044, message: "not_open_order")
    static let postOnlyReject = RPCError(code: 11054, message: "post_only_reject")
    static let websocketOnly = RPCError(code: 11050, message: "bad_request", data: .object([("reason", .string("websocket only method"))]))

    /// -32602 with Deribit's `data: {"param": …, "reason": …}`.
    static func invalidParams(_ param: String, _ reason: String) -> RPCError {
        RPCError(code: -32602, message: "Invalid params",
                 data: .object([("param", .string(param)), ("reason", .string(reason))]))
    }
    static func missing(_ param: String) -> RPCError { invalidParams(param, "must be present") }
}

/// Request params as JSONSerialization parsed them. Over HTTP GET every value is a string, so
/// numbers and booleans are also accepted in their text form, as Deribit does.
struct Params {
    let dict: [String: Any]
    init(_ dict: [String: Any]) { self.dict = dict }

    func has(_ k: String) -> Bool { dict[k] != nil && !(dict[k] is NSNull) }

    func string(_ k: String) throws(RPCError) -> String? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw .invalidParams(k, "must be a string") }
        return s
    }
    func requiredString(_ k: String) throws(RPCError) -> String {
        guard let s = try string(k) else { throw .missing(k) }
        return s
    }
    func number(_ k: String) throws(RPCError) -> Double? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        if let s = v as? String {
            guard let d = Double(s) else { throw .invalidParams(k, "must be a number") }
            return d
        }
        if let n = v as? NSNumber, !n.isBool { return n.doubleValue }
        throw .invalidParams(k, "must be a number")
    }
    func bool(_ k: String) throws(RPCError) -> Bool? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        if let s = v as? String {
            if s == "true" { return true }
            if s == "false" { return false }
        }
        if let n = v as? NSNumber, n.isBool { return n.boolValue }
        throw .invalidParams(k, "must be a boolean")
    }
    func strings(_ k: String) throws(RPCError) -> [String]? {
        guard let v = dict[k], !(v is NSNull) else { return nil }
        if let a = v as? [Any] {
            var out: [String] = []
            for item in a {
                guard let s = item as? String else { throw .invalidParams(k, "must be an array of strings") }
                out.append(s)
            }
            return out
        }
        if let s = v as? String { return [s] }   // HTTP GET: channels=a
        throw .invalidParams(k, "must be an array of strings")
    }
}

extension NSNumber {
    /// JSONSerialization gives booleans as NSNumber too; they are the ones of ObjC type `c` (char).
    var isBool: Bool { String(cString: objCType) == "c" }
}
