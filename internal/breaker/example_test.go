package breaker_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/hybridscore/hybridscore/internal/breaker"
)

func ExampleBreaker_Do() {
	b := breaker.New[string](breaker.Config{Threshold: 2, Timeout: time.Minute})
	fail := func() (string, error) { return "", errors.New("503") }
	for range 3 {
		_, err := b.Do(fail)
		fmt.Println(b.State(), errors.Is(err, breaker.ErrOpen))
	}
	b.Reset()
	fmt.Println(b.State())
	// Output:
	// closed false
	// open false
	// open true
	// closed
}
