// Entry point of the gateway server; the command line is in GatewayCommand.swift.
GatewayCommand.main()
