import XCTest
import TLS

final class CryptoTests: XCTestCase {
    // RFC 4231 §4.2, test case 1.
    func testHMACSHA256RFC4231Case1() {
        let mac = Crypto.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        XCTAssertEqual(Crypto.hex(mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    // RFC 4231 §4.3, test case 2: a key shorter than the block size.
    func testHMACSHA256RFC4231Case2() {
        let mac = Crypto.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        XCTAssertEqual(Crypto.hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testHMACSHA256WithEmptyKeyAndMessage() {
        // Reference value from `openssl dgst -sha256 -hmac ''` on empty input.
        XCTAssertEqual(Crypto.hex(Crypto.hmacSHA256(key: [], message: [])),
                       "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    // FIPS 180-2 appendix B.1.
    func testSHA256OfABC() {
        XCTAssertEqual(Crypto.hex(Crypto.sha256(Array("abc".utf8))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    func testSHA256OfEmptyInput() {
        XCTAssertEqual(Crypto.hex(Crypto.sha256([])),
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testHexIsLowercaseTwoDigitsPerByte() {
        XCTAssertEqual(Crypto.hex([0x00, 0x0f, 0xa0, 0xff]), "000fa0ff")
        XCTAssertEqual(Crypto.hex([]), "")
    }

    func testRandomBytesHaveTheRequestedLengthAndDiffer() {
        XCTAssertEqual(Crypto.randomBytes(0), [])
        let a = Crypto.randomBytes(32)
        let b = Crypto.randomBytes(32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
    }
}
