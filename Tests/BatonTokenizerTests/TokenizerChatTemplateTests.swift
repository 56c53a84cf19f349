import Foundation
import XCTest

@testable import BatonTokenizer

/// Chat templates rendered in Swift against the Jinja templates of real checkpoints.
final class TokenizerChatTemplateTests: XCTestCase {
    /// 26 Jul 2024, the date the reference renderer gives `strftime_now`.
    private let referenceDate = Date(timeIntervalSince1970: 1_721_995_200)

    private let conversations: [(messages: [ChatMessage], addGenerationPrompt: Bool)] = [
        ([.system("You are terse."), .user("Hi there!")], true),
        ([.user("Only a user turn.")], true),
        ([.user("No generation prompt.")], false),
        ([.system("  padded system \n"), .user("\n\t padded user  "), .assistant(" answer \n"), .user("again")], true),
        ([.user("\u{1C}separators\u{1F} and nbsp\u{A0}")], true),
        ([.system("S"), .user("u1"), .assistant("a1"), .system("second system"), .user("u2")], false),
        (
            [
                .user("call it"), .assistant("calling"), ChatMessage(role: "tool", content: "{\"t\": 21}\n\"q\"\\"),
                ChatMessage(role: "tool", content: "second"), .user("thanks")
            ], true
        ),
        ([.user("émoji 🚀 and 日本語"), .assistant("")], true)
    ]

    private func template(_ path: String) throws -> String {
        try String(contentsOf: TokenizerFixtures.root.appendingPathComponent(path), encoding: .utf8)
    }

    private func fixtureTemplate(_ name: String) throws -> String {
        let dir = try TokenizerFixtures.require(name, file: "tokenizer_config.json")
        let config =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("tokenizer_config.json"))) as! [String: Any]
        return config["chat_template"] as! String
    }

    private func crossCheck(_ jinja: String, bosToken: String, family: ChatTemplate.Family, line: UInt = #line) throws {
        let chat = try XCTUnwrap(ChatTemplate(detectingFrom: jinja, bosToken: bosToken, now: referenceDate), line: line)
        XCTAssertEqual(chat.family, family, line: line)
        let request: [String: Any] = [
            "template": jinja, "bos_token": bosToken,
            "conversations": conversations.map { c in
                [
                    "messages": c.messages.map { ["role": $0.role, "content": $0.content] },
                    "add_generation_prompt": c.addGenerationPrompt
                ] as [String: Any]
            }
        ]
        // jinja2's renders: live when it is installed, else as recorded (scripts/record_python_references.sh).
        var inputs = Transcript()
        inputs.line("t", [jinja, bosToken])
        for c in conversations {
            inputs.line("c", [c.addGenerationPrompt ? "1" : "0"] + c.messages.flatMap { [$0.role, $0.content] })
        }
        let expected: [String]
        if PythonReference.isAvailable("jinja2") {
            let data = try PythonReference.run(script: "render_chat.py", module: "jinja2", request: request)
            expected = try JSONDecoder().decode([String].self, from: data)
            if RecordedReferences.recording { try RecordedReferences.update { $0.chats[inputs.digest] = expected } }
        } else {
            expected = try XCTUnwrap(
                RecordedReferences.load().chats[inputs.digest],
                "no recorded jinja2 render of this template: run scripts/record_python_references.sh", line: line)
        }
        XCTAssertEqual(expected.count, conversations.count, line: line)
        for (k, c) in conversations.enumerated() {
            let ours = chat.render(messages: c.messages, addGenerationPrompt: c.addGenerationPrompt)
            XCTAssertEqual(ours, expected[k], "conversation \(k)", line: line)
        }
    }

    func testLlama3TemplateOfTheFixtureMatchesJinja() throws {
        try crossCheck(fixtureTemplate("tiny-llama"), bosToken: "<|begin_of_text|>", family: .llama3)
    }

    func testLlama32TemplateWithKnowledgeDatePreambleMatchesJinja() throws {
        try crossCheck(
            template("chat-templates/llama-3.2-instruct.jinja"), bosToken: "<|begin_of_text|>", family: .llama3)
    }

    func testQwen2TemplateOfTheFixtureMatchesJinja() throws {
        try crossCheck(fixtureTemplate("tiny-qwen2"), bosToken: "", family: .chatML)
    }

    func testQwen25TemplateWithToolResponsesMatchesJinja() throws {
        try crossCheck(template("chat-templates/qwen2.5-instruct.jinja"), bosToken: "", family: .chatML)
    }

    func testChatMLTemplateWithAnotherDefaultSystemPromptMatchesJinja() throws {
        let smol = try fixtureTemplate("tiny-qwen2").replacingOccurrences(
            of: "You are a helpful assistant.",
            with: "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        try crossCheck(smol, bosToken: "", family: .chatML)
    }

    func testLlama31RendersTheKnowledgeDatePreambleEvenWithoutSystemMessage() {
        let text = ChatTemplate.llama31.render(messages: [.user("Hi")], addGenerationPrompt: true)
        XCTAssertEqual(
            text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        )
        let plain = ChatTemplate.llama3.render(messages: [.user("Hi")], addGenerationPrompt: false)
        XCTAssertEqual(plain, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
    }

    func testQwenDefaultSystemPromptsDifferBetweenQwen2AndQwen25() throws {
        XCTAssertEqual(
            ChatTemplate.qwen25.render(messages: [.user("Hi")], addGenerationPrompt: true),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        XCTAssertEqual(
            ChatTemplate.qwen2.render(messages: [.user("Hi")], addGenerationPrompt: false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        let detected = try XCTUnwrap(
            ChatTemplate(detectingFrom: template("chat-templates/qwen2.5-instruct.jinja"), bosToken: ""))
        XCTAssertEqual(detected, .qwen25)
        XCTAssertNil(ChatTemplate(detectingFrom: "{{ messages }}", bosToken: ""))
    }
}
