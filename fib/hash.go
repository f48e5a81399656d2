package fib

// FlowHash is the L3 flow hash for multipath selection (the kernel's
// fib_multipath_hash_policy 0): it depends only on the addresses, so a flow
// always takes the same path.
func FlowHash(src, dst uint32) uint32 {
	return fmix(src*0x9e3779b1 ^ fmix(dst^0x85ebca6b))
}

// FlowHashL4 is the L3+L4 flow hash (fib_multipath_hash_policy 1).
func FlowHashL4(src, dst uint32, proto uint8, sport, dport uint16) uint32 {
	h := FlowHash(src, dst)
	return fmix(h ^ (uint32(sport)<<16|uint32(dport))*0xcc9e2d51 ^ uint32(proto)<<24)
}

// fmix is murmur3's finalizer: every input bit affects every output bit.
func fmix(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
