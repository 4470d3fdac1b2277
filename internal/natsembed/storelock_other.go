//go:build !unix

package natsembed

import "os"

// lockStore takes no lock where flock(2) does not exist.
func lockStore(string) (*os.File, error) { return nil, nil }
