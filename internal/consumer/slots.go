package consumer

import "sync"

// slots bounds the Handler calls that may wait (Concurrency) and hands a
// freed slot to a waiting interactive job first, except that bulk jobs get
// one while their share of recent grants is below share: a backlog of bulk
// jobs waiting on langextract never delays an interactive one by more than
// the calls already running, and is never starved either.
type slots struct {
	mu      sync.Mutex
	free    int
	share   float64
	waiting [2][]chan struct{} // FIFO by class
	granted [2]float64         // recent grants by class
}

func newSlots(n int, share float64) *slots { return &slots{free: n, share: share} }

// acquire takes a slot for class, or gives up when cancel closes (false).
func (s *slots) acquire(class Class, cancel <-chan struct{}) bool {
	s.mu.Lock()
	if s.free > 0 && len(s.waiting[Interactive])+len(s.waiting[Bulk]) == 0 {
		s.free--
		s.grant(class)
		s.mu.Unlock()
		return true
	}
	ch := make(chan struct{}, 1)
	s.waiting[class] = append(s.waiting[class], ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return true
	case <-cancel:
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, c := range s.waiting[class] {
			if c == ch {
				s.waiting[class] = append(s.waiting[class][:i], s.waiting[class][i+1:]...)
				return false
			}
		}
		// Granted meanwhile: give it on.
		s.releaseLocked()
		return false
	}
}

// release frees a slot, handing it to the waiter whose turn it is.
func (s *slots) release() {
	s.mu.Lock()
	s.releaseLocked()
	s.mu.Unlock()
}

func (s *slots) releaseLocked() {
	in, bulk := len(s.waiting[Interactive]) > 0, len(s.waiting[Bulk]) > 0
	var c Class
	switch {
	case bulk && (!in || s.granted[Bulk] < s.share*(s.granted[Interactive]+s.granted[Bulk]+1)):
		c = Bulk
	case in:
		c = Interactive
	default:
		s.free++
		return
	}
	ch := s.waiting[c][0]
	s.waiting[c] = s.waiting[c][1:]
	s.grant(c)
	ch <- struct{}{}
}

func (s *slots) grant(c Class) {
	s.granted[c]++
	if s.granted[Interactive]+s.granted[Bulk] > 1000 { // remember recent grants only
		s.granted[Interactive] /= 2
		s.granted[Bulk] /= 2
	}
}
