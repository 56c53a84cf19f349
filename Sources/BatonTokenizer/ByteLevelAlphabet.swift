/// GPT-2's byte-to-character table: every byte gets a printable Unicode character, so that a
/// byte-level BPE vocabulary can be stored as strings. Printable Latin-1 bytes map to
/// themselves; the other 68 bytes map, in order, to U+0100, U+0101, ... (space becomes `Ġ`).
enum ByteLevelAlphabet {
    /// `characters[b]` is the character standing for byte `b`.
    static let characters: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable =
                (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte)
                || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte a character stands for, or nil when the character is not in the table.
    static func byte(for character: Unicode.Scalar) -> UInt8? {
        let v = character.value
        return v < 324 ? bytesByScalar[Int(v)] : nil
    }

    private static let bytesByScalar: [UInt8?] = {
        var table = [UInt8?](repeating: nil, count: 324)
        for (byte, character) in characters.enumerated() { table[Int(character.value)] = UInt8(byte) }
        return table
    }()
}
