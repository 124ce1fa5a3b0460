print("gateway-bench: not written yet")
