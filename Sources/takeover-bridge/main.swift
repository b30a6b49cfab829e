print("takeover-bridge: not built yet")
