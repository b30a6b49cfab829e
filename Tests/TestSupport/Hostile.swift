/// Strings built to hurt: RFC 4514/4515 specials, spaces and `#` at the edges, NUL and
/// control characters, non-ASCII letters, combining marks, emoji, and injection attempts.
public enum Hostile {
    public static let pieces: [String] = [
        ",", "+", "\"", "\\", "<", ">", ";", "=", "#", " ", "  ", "*", "(", ")", "\u{0}", "\u{1}", "\n", "\r", "\t",
        "\u{7F}", "é", "e\u{301}", "ß", "İ", "Ω", "日本", "🙂", "👩‍👩‍👧", "\u{200B}", "\u{FEFF}",
        "a", "Z", "0", "9", "-", ".", "_", "lab", "dc=evil", ",dc=evil", "*)(uid=*", ")(|(cn=*", "\\2a", "\\00", "#04",
        "Bob's MacBook Pro", "cn=x+sn=y", "\\,", "\\\\",
    ]

    public static func string(_ rng: inout SplitMix64, maxPieces: Int = 8) -> String {
        let count = Int.random(in: 0...maxPieces, using: &rng)
        var text = ""
        for _ in 0..<count {
            if Int.random(in: 0..<4, using: &rng) == 0 {
                // Any scalar from a few ranges, surrogates excluded.
                let ranges: [ClosedRange<UInt32>] = [0...0x7F, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF]
                let range = ranges[Int.random(in: 0..<ranges.count, using: &rng)]
                if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &rng)) { text.unicodeScalars.append(scalar) }
            } else {
                text += pieces[Int.random(in: 0..<pieces.count, using: &rng)]
            }
        }
        return text
    }

    public static let types = ["cn", "uid", "ou", "dc", "o", "CN", "Uid", "objectClass", "x-custom-attr", "2.5.4.3", "0.9.2342.19200300.100.1.1"]
}
