package server_test

import "fmt"

func fmtSscan(id string, i, j *int) (int, error) { return fmt.Sscanf(id, "o-%d-%d", i, j) }
