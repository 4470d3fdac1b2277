package config_test

import (
	"fmt"

	"github.com/hybridscore/hybridscore/internal/config"
)

func ExampleConfig_Validate() {
	cfg := config.Defaults()
	cfg.PatternSimilarityWeights = "concept=0.5,theme=0.2,domain=0.2,structure=0.15,relationship=0.15"
	fmt.Println(cfg.Validate())
	// Output: config: invalid: PATTERN_SIMILARITY_WEIGHTS: similarity: invalid weights: sum is 1.2, want 1 (±0.01)
}
