package analyzer_test

import (
	"fmt"

	"github.com/hybridscore/hybridscore/internal/analyzer"
)

func ExampleAnalyze() {
	a := analyzer.Analyze("Implement OAuth2 authentication with JWT tokens", "en", "pattern_matching")
	fmt.Println(a.Concepts, a.DomainIndicators)
	// Output: [authentication token] [security technology]
}
