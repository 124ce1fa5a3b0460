print("deribit-sim")
