import BatonTensor

/// Text drawn into frames with a built-in 5x7 bitmap font (digits and capital letters, the
/// HD44780 LCD shapes), so that a test video can carry a word or number without a font file or
/// an image library: `eval video-niah` draws its needles with it.
public enum BitmapText {
    /// Glyph width and height in font pixels; characters are set one font pixel apart.
    public static let glyphWidth = 5
    public static let glyphHeight = 7

    /// Rows of each glyph, top first; bit 4 is the leftmost column.
    static let glyphs: [Character: [UInt8]] = [
        "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        "A": [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11], "B": [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        "C": [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], "D": [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        "E": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], "F": [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        "G": [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], "H": [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        "I": [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], "J": [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        "K": [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], "L": [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        "M": [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], "N": [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        "O": [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "P": [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        "Q": [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], "R": [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        "S": [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], "T": [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        "U": [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], "V": [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        "W": [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], "X": [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        "Y": [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], "Z": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        " ": [0, 0, 0, 0, 0, 0, 0]
    ]

    /// Whether every character of `text` has a glyph (lower-case letters are drawn as capitals).
    public static func canDraw(_ text: String) -> Bool { text.uppercased().allSatisfy { glyphs[$0] != nil } }

    /// The largest font-pixel size at which `characters` characters with a one-glyph margin on each
    /// side fit in `width` x `height` pixels (at least 1).
    public static func scale(characters: Int, width: Int, height: Int) -> Int {
        let columns = (characters + 2) * (glyphWidth + 1), rows = glyphHeight + 4
        return max(1, min(width / max(columns, 1), height / rows))
    }

    /// `frame` with `text` drawn black on a white panel in its middle, each font pixel `scale`
    /// pixels square (default: as large as fits). Throws for a character without a glyph.
    public static func draw(_ text: String, on frame: RGBFrame, scale: Int? = nil) throws -> RGBFrame {
        let rows = try text.uppercased().map { character -> [UInt8] in
            guard let glyph = glyphs[character] else {
                throw BatonError.invalidArgument("the bitmap font has no glyph for '\(character)' in '\(text)'")
            }
            return glyph
        }
        let scale = scale ?? Self.scale(characters: rows.count, width: frame.width, height: frame.height)
        let textWidth = (rows.count * (glyphWidth + 1) - 1) * scale, textHeight = glyphHeight * scale
        let left = (frame.width - textWidth) / 2, top = (frame.height - textHeight) / 2
        var drawn = frame
        // The panel: a margin of two font pixels around the text, clipped to the frame.
        drawn.fill(
            x: left - 2 * scale, y: top - 2 * scale, width: textWidth + 4 * scale, height: textHeight + 4 * scale,
            colour: [255, 255, 255])
        for (index, glyph) in rows.enumerated() {
            for (row, bits) in glyph.enumerated() {
                for column in 0..<glyphWidth where bits & (0x10 >> UInt8(column)) != 0 {
                    drawn.fill(
                        x: left + (index * (glyphWidth + 1) + column) * scale, y: top + row * scale,
                        width: scale, height: scale, colour: [0, 0, 0])
                }
            }
        }
        return drawn
    }

}

extension RGBFrame {
    /// Paints the rectangle at (`x`, `y`) of `width` x `height` pixels, clipped to the frame, in
    /// `colour` (red, green, blue).
    public mutating func fill(x: Int, y: Int, width: Int, height: Int, colour: [UInt8]) {
        let columns = max(0, x)..<min(self.width, x + width), rows = max(0, y)..<min(self.height, y + height)
        guard !columns.isEmpty else { return }
        for row in rows {
            for column in columns {
                for channel in 0..<3 { pixels[(row * self.width + column) * 3 + channel] = colour[channel] }
            }
        }
    }
}
