package job

// Skipping the values Decode does not keep (unknown keys, nested
// containers) with a state machine over a bit stack instead of recursion:
// 10,000 levels of nesting take 157 words, not 10,000 stack frames.

// skipContainer scans the object or array opening at d.i, without
// recursion: a bit stack says which of the open containers are objects.
func (d *decoder) skipContainer() bool {
	var stackArr [4]uint64
	sk := skipper{d: d, i: d.i, stack: stackArr[:0]}
	st := stOpen
	for st != stDone {
		switch st {
		case stOpen:
			// Grown here, not in open: an append through the pointer would
			// move the decoder to the heap.
			if sk.n>>6 == len(sk.stack) {
				sk.stack = append(sk.stack, 0)
			}
			st = sk.open()
		case stKey:
			st = sk.key()
		case stValue:
			st = sk.value()
		case stAfter:
			st = sk.after()
		case stClose:
			st = sk.close()
		}
		if st == stFailed {
			return false
		}
	}
	return true
}

// The states of skipContainer.
const (
	stOpen   = iota // data[i] opens a container
	stKey           // data[i] should open a key
	stValue         // data[i] should start a value
	stAfter         // a value just ended
	stClose         // a container just closed
	stDone          // the outermost container closed
	stFailed        // a syntax error, in d.syntaxErr
)

// skipper is skipContainer's position: i in d.data, and the n containers
// open, objects marked in the bit stack.
type skipper struct {
	d     *decoder
	i     int
	stack []uint64
	n     int
}

func (s *skipper) fail(context string) int {
	s.d.i = s.i
	s.d.errAt(context)
	return stFailed
}

func (s *skipper) isObject() bool { return s.stack[(s.n-1)>>6]>>((s.n-1)&63)&1 == 1 }

func (s *skipper) open() int {
	d, data := s.d, s.d.data
	d.depth++
	if d.depth > maxNestingDepth {
		return s.fail("exceeded max depth")
	}
	obj := data[s.i] == '{'
	if obj {
		s.stack[s.n>>6] |= 1 << (s.n & 63)
	} else {
		s.stack[s.n>>6] &^= 1 << (s.n & 63)
	}
	s.n++
	s.i = skipWS(data, s.i+1)
	switch {
	case obj && s.i < len(data) && data[s.i] == '}', !obj && s.i < len(data) && data[s.i] == ']':
		s.i++
		return stClose
	case obj:
		return stKey
	}
	return stValue
}

func (s *skipper) key() int {
	d, data := s.d, s.d.data
	if s.i >= len(data) || data[s.i] != '"' {
		return s.fail("looking for beginning of object key string")
	}
	d.i = s.i
	if _, _, _, ok := d.scanString(); !ok {
		return stFailed
	}
	s.i = skipWS(data, d.i)
	if s.i >= len(data) || data[s.i] != ':' {
		return s.fail("after object key")
	}
	s.i = skipWS(data, s.i+1)
	return stValue
}

func (s *skipper) value() int {
	data := s.d.data
	if s.i < len(data) && (data[s.i] == '{' || data[s.i] == '[') {
		return stOpen
	}
	s.d.i = s.i
	if !s.d.skipScalar() {
		return stFailed
	}
	s.i = s.d.i
	return stAfter
}

func (s *skipper) after() int {
	data := s.d.data
	s.i = skipWS(data, s.i)
	obj := s.isObject()
	if s.i < len(data) {
		switch c := data[s.i]; {
		case c == ',':
			s.i = skipWS(data, s.i+1)
			if obj {
				return stKey
			}
			return stValue
		case c == '}' && obj, c == ']' && !obj:
			s.i++
			return stClose
		}
	}
	if obj {
		return s.fail("after object key:value pair")
	}
	return s.fail("after array element")
}

func (s *skipper) close() int {
	s.n--
	s.d.depth--
	if s.n == 0 {
		s.d.i = s.i
		return stDone
	}
	return stAfter
}
