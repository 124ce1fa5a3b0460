print("deribit-gateway")
