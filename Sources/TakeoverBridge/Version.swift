// The program's version: the one place it is written. `takeover-bridge --version` prints
// it, the metrics carry it (takeover_bridge_build_info), and scripts/package.sh names the
// Debian package after it (read from this file).

package enum BridgeVersion {
    package static let string = "0.9.0"
}
