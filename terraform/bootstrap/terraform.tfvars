cost_center = "platform"
owner       = "platform-team"
