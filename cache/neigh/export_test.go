package neigh

// ARPReceived is the tests' shorthand for ARPInput: a request (op 1) or a
// reply (op 2), replies taken as unicast to the router.
func (m *Manager) ARPReceived(core, port int, op uint16, senderIP uint32, senderMAC MAC, targetIP uint32) bool {
	return m.ARPInput(core, port, ARPPacket{
		Op: op, SenderIP: senderIP, SenderMAC: senderMAC, TargetIP: targetIP,
		Unicast: op == 2,
	})
}
