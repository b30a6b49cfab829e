// RFC 4514 (DN string representation) and RFC 4515 (filter string representation)
// escaping. Pure functions over Swift strings; no libldap.

public enum DNEscaping {
    /// Escapes one attribute value for use inside an RDN (RFC 4514 section 2.4):
    /// `" + , ; < > \` and NUL anywhere, a leading space or `#`, a trailing space.
    /// Non-ASCII characters are kept as UTF-8 (allowed by the RFC).
    public static func escapeValue(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count + 8)
        let scalars = Array(value.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            switch scalar {
            case "\"", "+", ",", ";", "<", ">", "\\", "=":
                out.append("\\")
                out.unicodeScalars.append(scalar)
            case "\u{0}":
                out.append("\\00")
            case " " where index == 0 || index == scalars.count - 1:
                out.append("\\ ")
            case "#" where index == 0:
                out.append("\\#")
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out.append("\\")
                    out.append(hexByte(UInt8(scalar.value)))
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// `attr=escaped(value)`.
    public static func rdn(_ attribute: String, _ value: String) -> String {
        "\(attribute)=\(escapeValue(value))"
    }
}

public enum FilterEscaping {
    /// Escapes an assertion value (RFC 4515 section 3): `* ( ) \` and NUL as `\XX`.
    /// Works on UTF-8 bytes so every byte that needs it is escaped.
    public static func escapeValue(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count + 8)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "*": out.append("\\2a")
            case "(": out.append("\\28")
            case ")": out.append("\\29")
            case "\\": out.append("\\5c")
            case "\u{0}": out.append("\\00")
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// `(attr=escaped(value))`.
    public static func equality(_ attribute: String, _ value: String) -> String {
        "(\(attribute)=\(escapeValue(value)))"
    }
}

@inline(__always)
func hexByte(_ byte: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
}
