/// An ordered list of header fields as they appeared on the wire.
///
/// Field names compare case-insensitively (RFC 9110 §5.1); order and repeated
/// fields are preserved because some fields (`Set-Cookie`) cannot be combined.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (name: String, value: String)

    @usableFromInline
    struct Field: Sendable {
        var name: String
        var value: String
    }

    @usableFromInline
    var fields: [Field]

    public init() {
        fields = []
    }

    public init(_ fields: [(name: String, value: String)]) {
        self.fields = fields.map { Field(name: $0.name, value: $0.value) }
    }

    /// Keeps the literal's order: `["Host": "a", "Upgrade": "websocket"]`.
    public init(dictionaryLiteral elements: (String, String)...) {
        fields = elements.map { Field(name: $0.0, value: $0.1) }
    }

    public var count: Int { fields.count }
    public var isEmpty: Bool { fields.isEmpty }

    /// The first value of the field `name`, or nil.
    public subscript(_ name: String) -> String? {
        fields.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// Every value of the field `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.compactMap { asciiCaseInsensitiveEquals($0.name, name) ? $0.value : nil }
    }

    public func contains(_ name: String) -> Bool {
        fields.contains { asciiCaseInsensitiveEquals($0.name, name) }
    }

    public mutating func add(name: String, value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Removes every field called `name`.
    public mutating func remove(name: String) {
        fields.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// Replaces the first field called `name` and removes the others, or appends.
    public mutating func replaceOrAdd(name: String, value: String) {
        if let index = fields.firstIndex(where: { asciiCaseInsensitiveEquals($0.name, name) }) {
            fields[index].value = value
            var i = fields.index(after: index)
            while i < fields.endIndex {
                if asciiCaseInsensitiveEquals(fields[i].name, name) {
                    fields.remove(at: i)
                } else {
                    i += 1
                }
            }
        } else {
            add(name: name, value: value)
        }
    }

    /// Whether any `name` field lists `token` as one of its comma-separated
    /// elements (RFC 9110 §5.6.1), compared case-insensitively:
    /// `Connection: keep-alive, Upgrade` contains `upgrade`.
    public func containsToken(_ token: String, in name: String) -> Bool {
        for field in fields where asciiCaseInsensitiveEquals(field.name, name) {
            for element in listElements(field.value) where asciiCaseInsensitiveEquals(element, token) {
                return true
            }
        }
        return false
    }

    public struct Iterator: IteratorProtocol {
        var base: IndexingIterator<[Field]>
        public mutating func next() -> (name: String, value: String)? {
            base.next().map { ($0.name, $0.value) }
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(base: fields.makeIterator())
    }
}

extension HTTPHeaders: Equatable {
    /// Same fields in the same order; names compare case-insensitively, values exactly.
    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy {
                asciiCaseInsensitiveEquals($0.name, $1.name) && $0.value == $1.value
            }
    }
}

extension HTTPHeaders: CustomStringConvertible {
    public var description: String {
        "[" + fields.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]"
    }
}

/// The non-empty elements of a comma-separated list with optional whitespace
/// around them (RFC 9110 §5.6.1: recipients ignore empty elements).
func listElements(_ value: String) -> [Substring] {
    value.split(separator: ",", omittingEmptySubsequences: true).compactMap { element in
        let trimmed = element.drop { $0 == " " || $0 == "\t" }
        var end = trimmed.endIndex
        while end > trimmed.startIndex {
            let before = trimmed.index(before: end)
            guard trimmed[before] == " " || trimmed[before] == "\t" else { break }
            end = before
        }
        let result = trimmed[trimmed.startIndex..<end]
        return result.isEmpty ? nil : result
    }
}

@usableFromInline
func asciiCaseInsensitiveEquals<A: StringProtocol, B: StringProtocol>(_ a: A, _ b: B) -> Bool {
    var left = a.utf8.makeIterator()
    var right = b.utf8.makeIterator()
    while true {
        switch (left.next(), right.next()) {
        case (nil, nil):
            return true
        case let (x?, y?):
            if x != y && asciiLower(x) != asciiLower(y) { return false }
        default:
            return false
        }
    }
}

@inline(__always)
func asciiLower(_ byte: UInt8) -> UInt8 {
    byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
}
