import XCTest
@testable import WebSocket

final class UTF8ValidatorTests: XCTestCase {
    func testValid() {
        let valid: [[UInt8]] = [
            [], Array("plain ASCII long enough to use the 8-byte fast path, twice over".utf8),
            [0xC2, 0x80], [0xDF, 0xBF],                  // U+0080, U+07FF
            [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF],      // U+0800, U+D7FF
            [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],      // U+E000, U+FFFF
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],  // U+10000, U+10FFFF
            Array("κόσμε 😀 €".utf8),
        ]
        for bytes in valid { XCTAssertTrue(UTF8Validator.isValid(bytes), hex(bytes)) }
    }

    func testInvalid() {
        let invalid: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0xAF], [0xC1, 0xBF],                   // stray continuation, overlong 2-byte
            [0xE0, 0x80, 0xAF], [0xE0, 0x9F, 0xBF],                       // overlong 3-byte
            [0xF0, 0x80, 0x80, 0xAF], [0xF0, 0x8F, 0xBF, 0xBF],           // overlong 4-byte
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],                       // surrogates
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFE], [0xFF],  // above U+10FFFF
            [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xC3],                     // truncated
            [0xE2, 0x28, 0xA1], [0xC3, 0x28],                             // bad continuation
        ]
        for bytes in invalid {
            XCTAssertFalse(UTF8Validator.isValid(bytes), hex(bytes))
            // Also after a run of ASCII that takes the fast path.
            XCTAssertFalse(UTF8Validator.isValid(Array("0123456789abcdef".utf8) + bytes), hex(bytes))
        }
    }

    func testAgreesWithTheStandardLibraryAtEverySplit() {
        var generator = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2,
                                    0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<3000 {
            let length = Int.random(in: 0...24, using: &generator)
            let bytes = (0..<length).map { _ in interesting.randomElement(using: &generator)! }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            XCTAssertEqual(UTF8Validator.isValid(bytes), expected, hex(bytes))
            let cut = Int.random(in: 0...length, using: &generator)
            var incremental = UTF8Validator.Incremental()
            let ok = incremental.feed(bytes[..<cut]) && incremental.feed(bytes[cut...])
            XCTAssertEqual(ok && incremental.isAtCharacterBoundary, expected, hex(bytes))
        }
    }

    func testIncrementalFailureIsSticky() {
        var validator = UTF8Validator.Incremental()
        XCTAssertFalse(validator.feed([0xFF]))
        XCTAssertFalse(validator.feed(Array("a".utf8)))
        XCTAssertFalse(validator.isAtCharacterBoundary)
    }

    func testIncrementalBoundary() {
        var validator = UTF8Validator.Incremental()
        XCTAssertTrue(validator.feed([0xF0, 0x9F]))
        XCTAssertFalse(validator.isAtCharacterBoundary)
        XCTAssertTrue(validator.feed([0x98, 0x80]))
        XCTAssertTrue(validator.isAtCharacterBoundary)
    }
}
