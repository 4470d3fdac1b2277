package capacity_test

import (
	"fmt"

	"github.com/hybridscore/hybridscore/internal/capacity"
)

// At the month's peak each worker finished 40 jobs/s; 120 jobs/s with 30 %
// headroom needs 156 ÷ 40 = 3.9, so four workers. The month is read hourly.
func Example() {
	fmt.Println(capacity.WorkersFor(120, capacity.DefaultHeadroom, 40))
	fmt.Println(capacity.Step(capacity.DefaultWindow))
	// Output:
	// 4
	// 1h0m0s
}
