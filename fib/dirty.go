package fib

import "math/bits"

// dirtySet is what a batch changed in the tables the structures merge: whole
// chunks (/8) for prefixes up to /8, /16 blocks for longer ones.
type dirtySet struct {
	chunks  [4]uint64
	nchunks int
	bm      []uint64
	list    []uint32
	n       int
}

func (d *dirtySet) mark(key uint32, plen uint8) {
	if plen <= 8 {
		lo := key >> 24
		hi := lo + 1<<(8-plen) - 1
		for c := lo; c <= hi; c++ {
			if !d.hasChunk(c) {
				d.chunks[c>>6] |= 1 << (c & 63)
				d.nchunks++
			}
		}
		return
	}
	if d.bm == nil {
		d.bm = make([]uint64, 1<<16/64)
	}
	lo := key >> 16
	hi := lo
	if plen < 16 {
		hi = lo + 1<<(16-plen) - 1
	}
	for b := lo; b <= hi; b++ {
		if d.bm[b>>6]&(1<<(b&63)) == 0 {
			d.bm[b>>6] |= 1 << (b & 63)
			d.list = append(d.list, b)
			d.n++
		}
	}
}

// reset empties d, keeping its bitmap (8 KB) for the next batch.
func (d *dirtySet) reset() {
	for _, b := range d.list {
		d.bm[b>>6] &^= 1 << (b & 63)
	}
	*d = dirtySet{bm: d.bm, list: d.list[:0]}
}

func (d *dirtySet) markAll() {
	d.chunks = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	d.nchunks = 256
}

// hasChunk reports whether d has the whole chunk hi.
func (d *dirtySet) hasChunk(hi uint32) bool { return d.chunks[hi>>6]&(1<<(hi&63)) != 0 }

// hasBlock reports whether d has block b, alone or in a whole chunk.
func (d *dirtySet) hasBlock(b uint32) bool {
	return d.hasChunk(b>>8) || d.bm != nil && d.bm[b>>6]&(1<<(b&63)) != 0
}

// merge adds what o has to d.
func (d *dirtySet) merge(o *dirtySet) {
	for i, c := range o.chunks {
		for c != 0 {
			hi := uint32(i*64 + bits.TrailingZeros64(c))
			c &= c - 1
			d.mark(hi<<24, 8)
		}
	}
	for _, b := range o.list {
		d.mark(b<<16, 16)
	}
}

// moveIf moves the chunks for which chunkIf holds and the blocks for
// which blockIf holds from d to to.
func (d *dirtySet) moveIf(to *dirtySet, chunkIf, blockIf func(uint32) bool) {
	for i, c := range d.chunks {
		for c != 0 {
			hi := uint32(i*64 + bits.TrailingZeros64(c))
			c &= c - 1
			if chunkIf(hi) {
				d.chunks[i] &^= 1 << (hi & 63)
				d.nchunks--
				to.mark(hi<<24, 8)
			}
		}
	}
	k := 0
	for _, b := range d.list {
		if blockIf(b) {
			d.bm[b>>6] &^= 1 << (b & 63)
			to.mark(b<<16, 16)
			continue
		}
		d.list[k] = b
		k++
	}
	d.list, d.n = d.list[:k], k
}

func (d *dirtySet) any() bool { return d.nchunks > 0 || d.n > 0 }
