// DeribitSim
