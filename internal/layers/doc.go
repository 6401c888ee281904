// Package layers holds no code, only a test: it keeps debship's packages
// in layers, each importing only from the layers below it, so that a
// package can be understood, tested and changed with only what is under it
// in mind. The table of layers is in layers_test.go; a new package must be
// placed there.
package layers
