package neigh

import "container/heap"

func (m *Manager) runTimers(t int64) {
	for len(m.timers) > 0 && m.timers[0].deadline <= t {
		e := heap.Pop(&m.timers).(*Entry)
		m.timer(m.ports[e.port], e, t)
	}
}

func (m *Manager) arm(e *Entry, at int64) {
	e.deadline = at
	if e.hidx >= 0 {
		heap.Fix(&m.timers, e.hidx)
		return
	}
	heap.Push(&m.timers, e)
}

func (m *Manager) disarm(e *Entry) {
	if e.hidx >= 0 {
		heap.Remove(&m.timers, e.hidx)
	}
}

// timerHeap orders entries by deadline (owner only).
type timerHeap []*Entry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *timerHeap) Push(x any) {
	e := x.(*Entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}
