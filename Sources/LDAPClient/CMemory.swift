// Owned C copies of Swift values for the duration of one libldap call, and the
// conversion of libldap's results into Swift values. Every allocation here has one
// owner and is freed on every path.

internal import CLDAP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns every C allocation made to pass Swift values into one libldap call (strings,
/// berval arrays, LDAPMod arrays). libldap encodes requests into its own BER buffer
/// before the call returns, so everything is freed when the arena goes away.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    private var secretBlocks: [(UnsafeMutableRawPointer, Int)] = []

    deinit {
        for (block, size) in secretBlocks {
            explicit_bzero(block, size) // a password copy does not outlive the call (never optimised away)
            free(block)
        }
        for block in blocks { free(block) }
    }

    private func allocate(_ size: Int, secret: Bool = false) -> UnsafeMutableRawPointer {
        // malloc(0) may return NULL; always ask for at least one byte.
        guard let block = malloc(max(size, 1)) else { fatalError("out of memory") }
        if secret { secretBlocks.append((block, max(size, 1))) } else { blocks.append(block) }
        return block
    }

    /// A NUL-terminated copy. Fails (nil) when `string` contains NUL, which would
    /// silently truncate it on the C side.
    func cString(_ string: String, secret: Bool = false) -> UnsafeMutablePointer<CChar>? {
        let utf8 = string.utf8
        if utf8.contains(0) { return nil }
        let block = allocate(utf8.count + 1, secret: secret).bindMemory(to: CChar.self, capacity: utf8.count + 1)
        var index = 0
        for byte in utf8 {
            block[index] = CChar(bitPattern: byte)
            index += 1
        }
        block[index] = 0
        return block
    }

    /// A berval pointing at an owned copy of `bytes` (may contain NUL).
    func berval(_ bytes: some Collection<UInt8>, secret: Bool = false) -> UnsafeMutablePointer<CLDAP.berval> {
        let count = bytes.count
        let data = allocate(count, secret: secret).bindMemory(to: UInt8.self, capacity: max(count, 1))
        var index = 0
        for byte in bytes {
            data[index] = byte
            index += 1
        }
        let value = allocate(MemoryLayout<CLDAP.berval>.stride).bindMemory(to: CLDAP.berval.self, capacity: 1)
        value.initialize(to: CLDAP.berval(bv_len: ber_len_t(count), bv_val: UnsafeMutableRawPointer(data).assumingMemoryBound(to: CChar.self)))
        return value
    }

    /// A NULL-terminated array of pointers.
    func nullTerminated<T>(_ items: [UnsafeMutablePointer<T>?]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?> {
        let array = allocate(MemoryLayout<UnsafeMutablePointer<T>?>.stride * (items.count + 1))
            .bindMemory(to: UnsafeMutablePointer<T>?.self, capacity: items.count + 1)
        for (index, item) in items.enumerated() { array[index] = item }
        array[items.count] = nil
        return array
    }

    /// The attribute list of a search: NULL (all user attributes) when empty.
    func attributeList(_ names: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?? {
        if names.isEmpty { return .some(nil) }
        var pointers: [UnsafeMutablePointer<CChar>?] = []
        pointers.reserveCapacity(names.count)
        for name in names {
            guard let pointer = cString(name) else { return nil }
            pointers.append(pointer)
        }
        return .some(nullTerminated(pointers))
    }

    /// One `LDAPMod` with text values.
    func mod(op: Int32, type: String, values: [String]) -> UnsafeMutablePointer<LDAPMod>? {
        mod(op: op, type: type, byteValues: values.map { $0.utf8 })
    }

    /// One `LDAPMod` with binary values (LDAP_MOD_BVALUES).
    func mod<Bytes: Collection<UInt8>>(op: Int32, type: String, byteValues values: [Bytes]) -> UnsafeMutablePointer<LDAPMod>? {
        guard let name = cString(type) else { return nil }
        let mod = allocate(MemoryLayout<LDAPMod>.stride).bindMemory(to: LDAPMod.self, capacity: 1)
        mod.initialize(to: LDAPMod())
        mod.pointee.mod_op = op | LDAP_MOD_BVALUES
        mod.pointee.mod_type = name
        // An empty value list means "no values" (delete the whole attribute): NULL.
        let values: UnsafeMutablePointer<UnsafeMutablePointer<CLDAP.berval>?>? =
            values.isEmpty ? nil : nullTerminated(values.map { Optional(berval($0)) })
        CLDAP_mod_set_bvalues(mod, values)
        return mod
    }
}

/// Copies `len` bytes at `val` (not NUL-terminated).
@inline(__always)
func bytes(of value: CLDAP.berval) -> [UInt8] {
    guard let base = value.bv_val, value.bv_len > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: base, count: Int(value.bv_len)))
}

/// The bytes of a berval, not copied: valid while the berval's owner keeps it.
@inline(__always)
func buffer(of value: CLDAP.berval) -> UnsafeRawBufferPointer {
    guard let base = value.bv_val, value.bv_len > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
    return UnsafeRawBufferPointer(start: base, count: Int(value.bv_len))
}

@inline(__always)
func string(of value: CLDAP.berval) -> String {
    guard let base = value.bv_val, value.bv_len > 0 else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: base, count: Int(value.bv_len)), as: UTF8.self)
}

/// A C string returned by libldap (not freed here).
@inline(__always)
func string(ofC pointer: UnsafePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    return String(cString: pointer)
}

/// liblber's "no tag" answer, `LBER_DEFAULT` (`(ber_tag_t) -1`, a cast Swift does not import).
private let berDefault = ber_tag_t.max

/// Reads one search entry: the DN with `ldap_get_dn_ber` (which leaves the BerElement at
/// the first attribute, bounded by the attribute list), then every attribute
/// (`SEQUENCE { type, SET OF value }`) in place with liblber's element calls: the type and
/// the values are read where they lie in the message's buffer, with no value array
/// allocated per attribute (as `ldap_get_attribute_ber` does), and copied into Swift
/// values once. The BerElement is freed with `ber_free(ber, 0)` (the buffer is the
/// message's). nil when the entry does not decode: liblber checks every length against the
/// buffer, and each attribute's values must end exactly where its set does.
/// `hasOptions`: whether any attribute description has an option (`;`), the only way one
/// can carry a range.
func parseEntry(_ ld: OpaquePointer, _ message: OpaquePointer) -> (entry: LDAPEntry, hasOptions: Bool)? {
    var berElement: OpaquePointer?
    var dnValue = CLDAP.berval()
    guard ldap_get_dn_ber(ld, message, &berElement, &dnValue) == LDAP_SUCCESS, let ber = berElement else {
        if let berElement { ber_free(berElement, 0) }
        return nil
    }
    defer { ber_free(ber, 0) }
    func remaining() -> Int? {
        var bytes: ber_len_t = 0
        guard ber_get_option(UnsafeMutableRawPointer(ber), LBER_OPT_BER_REMAINING_BYTES, &bytes) == LBER_OPT_SUCCESS
        else { return nil }
        return Int(bytes)
    }
    let dn = string(of: dnValue)
    var attributes: [(name: String, values: [LDAPValue])] = []
    attributes.reserveCapacity(8)
    var hasOptions = false
    guard var more = remaining().map({ $0 > 0 }) else { return nil }
    var end: UnsafeMutablePointer<CChar>? // the attribute list's end, known from the first type on
    while more {
        var length: ber_len_t = 0
        var type = CLDAP.berval()
        guard ber_skip_tag(ber, &length) != berDefault, ber_get_stringbv(ber, &type, LBER_BV_NOTERM) != berDefault,
              let typeStart = type.bv_val else { return nil }
        if end == nil {
            guard let left = remaining() else { return nil }
            end = typeStart + Int(type.bv_len) + left
        }
        var last: UnsafeMutablePointer<CChar>?
        var tag = ber_first_element(ber, &length, &last)
        guard let last, let listEnd = end else { return nil }
        var values: [LDAPValue] = []
        if tag == berDefault {
            // An empty set, or a first value that does not decode.
            guard let left = remaining(), listEnd - left == last else { return nil }
        }
        var position = last
        while tag != berDefault {
            var value = CLDAP.berval()
            guard ber_get_stringbv(ber, &value, LBER_BV_NOTERM) != berDefault, let start = value.bv_val else { return nil }
            let count = Int(value.bv_len)
            position = start + count
            if values.isEmpty {
                // Room for as many more values of this one's size as the set has bytes
                // for (each takes at least two more bytes of tag and length).
                values.reserveCapacity(1 + max(0, last - position) / (count + 2))
            }
            values.append(LDAPValue(UnsafeRawBufferPointer(start: start, count: count)))
            tag = ber_next_element(ber, &length, last)
        }
        guard position == last else { return nil }
        let typeBytes = UnsafeRawBufferPointer(start: typeStart, count: Int(type.bv_len))
        if !hasOptions && typeBytes.contains(UInt8(ascii: ";")) { hasOptions = true }
        attributes.append((name: string(of: type), values: values))
        more = last != listEnd
    }
    return (LDAPEntry(dn: dn, attributes: attributes), hasOptions)
}
