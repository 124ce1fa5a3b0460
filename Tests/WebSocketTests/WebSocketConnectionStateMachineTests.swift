import XCTest
@testable import WebSocket

final class WebSocketConnectionStateMachineTests: XCTestCase {
    typealias Machine = WebSocketConnectionStateMachine

    func testOpenDeliversDataAndAnswersPings() {
        for role in [WebSocketRole.server, .client] {
            var machine = Machine(role: role)
            XCTAssertEqual(machine.receivedMessage(.text([0x61])), .deliverText([0x61]))
            XCTAssertEqual(machine.receivedMessage(.binary([1])), .deliverBinary([1]))
            XCTAssertEqual(machine.receivedMessage(.ping([1, 2])), .sendPong([1, 2]))
            XCTAssertEqual(machine.receivedMessage(.pong([3])), .ignore)
            XCTAssertEqual(machine.state, .open)
            XCTAssertTrue(machine.canSendData)
        }
    }

    func testPeerInitiatedCloseServerEchoesThenClosesTCP() {
        var machine = Machine(role: .server)
        XCTAssertEqual(machine.receivedMessage(.close(code: 1001, reason: "bye")),
                       .sendCloseThenCloseTransport(code: 1001, reason: ""))
        XCTAssertEqual(machine.state, .closed)
        XCTAssertFalse(machine.canSendData)
        XCTAssertEqual(machine.receivedMessage(.text([1])), .ignore)
        XCTAssertEqual(machine.receivedMessage(.ping([])), .ignore)
        XCTAssertEqual(machine.sendClose(code: 1000), .ignore)
    }

    func testPeerInitiatedCloseClientEchoesAndWaitsForTheServer() {
        var machine = Machine(role: .client)
        XCTAssertEqual(machine.receivedMessage(.close(code: 4000, reason: "")), .sendClose(code: 4000, reason: ""))
        XCTAssertEqual(machine.state, .closed)
        XCTAssertEqual(machine.closeTimerFired(), .closeTransport)
    }

    func testCloseWithoutCodeIsAnsweredWith1000() {
        var machine = Machine(role: .server)
        XCTAssertEqual(machine.receivedMessage(.close(code: nil, reason: "")),
                       .sendCloseThenCloseTransport(code: 1000, reason: ""))
    }

    func testWeInitiateCloseAsServer() {
        var machine = Machine(role: .server)
        XCTAssertEqual(machine.sendClose(code: 1008, reason: "slow consumer"), .sendClose(code: 1008, reason: "slow consumer"))
        XCTAssertEqual(machine.state, .closeSent)
        XCTAssertFalse(machine.canSendData)
        XCTAssertEqual(machine.sendClose(code: 1000), .ignore, "one close frame only")
        // The peer's data in flight is still delivered; its pings get no answer after our close.
        XCTAssertEqual(machine.receivedMessage(.text([1])), .deliverText([1]))
        XCTAssertEqual(machine.receivedMessage(.ping([])), .ignore)
        XCTAssertEqual(machine.receivedMessage(.close(code: 1008, reason: "")), .closeTransport)
        XCTAssertEqual(machine.state, .closed)
    }

    func testWeInitiateCloseAsClient() {
        var machine = Machine(role: .client)
        XCTAssertEqual(machine.sendClose(code: 1000), .sendClose(code: 1000, reason: ""))
        XCTAssertEqual(machine.receivedMessage(.close(code: 1000, reason: "")), .awaitTransportClose)
        XCTAssertEqual(machine.state, .closed)
        XCTAssertEqual(machine.transportClosed(), .closeTransport)
    }

    func testCloseTimerOnlyActsWhileClosing() {
        var machine = Machine(role: .server)
        XCTAssertEqual(machine.closeTimerFired(), .ignore)
        _ = machine.sendClose(code: 1001)
        XCTAssertEqual(machine.closeTimerFired(), .closeTransport)
        XCTAssertEqual(machine.state, .closed)
    }

    func testProtocolErrorFailsTheConnection() {
        for error: WebSocketProtocolError in [.unmaskedClientFrame, .invalidUTF8, .messageTooLarge, .binaryNotAccepted] {
            var machine = Machine(role: .server)
            XCTAssertEqual(machine.protocolError(error), .sendCloseThenCloseTransport(code: error.closeCode, reason: ""))
            XCTAssertEqual(machine.state, .closed)
        }
        var closing = Machine(role: .client)
        _ = closing.sendClose(code: 1000)
        XCTAssertEqual(closing.protocolError(.maskedServerFrame), .closeTransport, "a second close frame is never sent")
    }

    func testTransportClosedUnexpectedly() {
        var machine = Machine(role: .server)
        XCTAssertEqual(machine.transportClosed(), .closeTransport)
        XCTAssertEqual(machine.state, .closed)
        XCTAssertEqual(machine.receivedMessage(.text([1])), .ignore)
    }
}
