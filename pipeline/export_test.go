package pipeline

import "ferry/cache"

// Len is how many frames wait.
func (r *FrameRing) Len() int { return int(r.tail.Load() - r.head.Load()) }

// UseClock makes the pipelines read c, the neighbour owner's clock too,
// instead of the real one (tests step a fake one); before NewPipeline.
func (s *Dataplane) UseClock(c cache.Clock) { s.clock = c }
