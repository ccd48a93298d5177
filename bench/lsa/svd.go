package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
)

// csr is a sparse rows × cols matrix in compressed sparse row form.
type csr struct {
	rows, cols int
	ptr        []int // len rows+1
	idx        []int32
	val        []float64
}

// dense is a row-major rows × cols matrix.
type dense struct {
	rows, cols int
	data       []float64
}

func newDense(r, c int) dense { return dense{r, c, make([]float64, r*c)} }

func (d dense) row(i int) []float64 { return d.data[i*d.cols : (i+1)*d.cols] }

// parallelRows runs f over [0, n) split between the machine's cores.
func parallelRows(n int, f func(lo, hi int)) {
	w := min(runtime.GOMAXPROCS(0), max(1, n/64))
	var wg sync.WaitGroup
	for t := range w {
		lo, hi := t*n/w, (t+1)*n/w
		wg.Add(1)
		go func() { defer wg.Done(); f(lo, hi) }()
	}
	wg.Wait()
}

// mul returns A·X (A rows × cols, X cols × l).
func (a *csr) mul(x dense) dense {
	y := newDense(a.rows, x.cols)
	parallelRows(a.rows, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			yr := y.row(i)
			for p := a.ptr[i]; p < a.ptr[i+1]; p++ {
				axpy(a.val[p], x.row(int(a.idx[p])), yr)
			}
		}
	})
	return y
}

// tmul returns Aᵀ·X (X rows × l), as cols × l.
func (a *csr) tmul(x dense) dense {
	w := runtime.GOMAXPROCS(0)
	parts := make([]dense, w)
	var wg sync.WaitGroup
	for t := range w {
		lo, hi := t*a.rows/w, (t+1)*a.rows/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			z := newDense(a.cols, x.cols)
			for i := lo; i < hi; i++ {
				xr := x.row(i)
				for p := a.ptr[i]; p < a.ptr[i+1]; p++ {
					axpy(a.val[p], xr, z.row(int(a.idx[p])))
				}
			}
			parts[t] = z
		}()
	}
	wg.Wait()
	z := parts[0]
	for _, p := range parts[1:] {
		axpy(1, p.data, z.data)
	}
	return z
}

func axpy(a float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func dot(x, y []float64) float64 {
	y = y[:len(x)]
	s := 0.0
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// orthonormalize replaces the columns of x (rows × l, row-major) by an orthonormal basis of their
// span, by modified Gram-Schmidt with one re-orthogonalisation pass. A column that is (numerically)
// dependent on the earlier ones is replaced by a random direction, so the result always has l
// orthonormal columns.
func orthonormalize(x dense, rng *rand.Rand) {
	n, l := x.rows, x.cols
	cols := make([][]float64, l)
	for j := range l {
		c := make([]float64, n)
		for i := range n {
			c[i] = x.data[i*l+j]
		}
		cols[j] = c
	}
	for j := range l {
		c := cols[j]
		orig := math.Sqrt(dot(c, c))
		for range 2 {
			for i := range j {
				axpy(-dot(cols[i], c), cols[i], c)
			}
		}
		nrm := math.Sqrt(dot(c, c))
		if nrm <= 1e-10*max(orig, 1e-300) {
			for i := range c {
				c[i] = rng.NormFloat64()
			}
			for range 2 {
				for i := range j {
					axpy(-dot(cols[i], c), cols[i], c)
				}
			}
			nrm = math.Sqrt(dot(c, c))
		}
		for i := range c {
			c[i] /= nrm
		}
	}
	for j := range l {
		for i := range n {
			x.data[i*l+j] = cols[j][i]
		}
	}
}

// jacobiEigen diagonalises the symmetric l × l matrix s (row-major, overwritten) by cyclic Jacobi
// rotations. It returns the eigenvalues in decreasing order and the matching eigenvectors as the
// columns of a row-major l × l matrix.
func jacobiEigen(s []float64, l int) ([]float64, []float64) {
	v := make([]float64, l*l)
	for i := range l {
		v[i*l+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		off, diag := 0.0, 0.0
		for p := range l {
			diag += s[p*l+p] * s[p*l+p]
			for q := p + 1; q < l; q++ {
				off += s[p*l+q] * s[p*l+q]
			}
		}
		if off <= 1e-30*diag || off == 0 {
			break
		}
		for p := range l {
			for q := p + 1; q < l; q++ {
				apq := s[p*l+q]
				if apq == 0 || math.Abs(apq) < 1e-300 {
					continue
				}
				app, aqq := s[p*l+p], s[q*l+q]
				theta := (aqq - app) / (2 * apq)
				t := 1 / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				if theta < 0 {
					t = -t
				}
				c := 1 / math.Sqrt(t*t+1)
				sn := t * c
				// A' = Jᵀ A J with J the rotation in the (p, q) plane.
				for k := range l {
					akp, akq := s[k*l+p], s[k*l+q]
					s[k*l+p] = c*akp - sn*akq
					s[k*l+q] = sn*akp + c*akq
				}
				for k := range l {
					apk, aqk := s[p*l+k], s[q*l+k]
					s[p*l+k] = c*apk - sn*aqk
					s[q*l+k] = sn*apk + c*aqk
				}
				s[p*l+q], s[q*l+p] = 0, 0
				for k := range l {
					vkp, vkq := v[k*l+p], v[k*l+q]
					v[k*l+p] = c*vkp - sn*vkq
					v[k*l+q] = sn*vkp + c*vkq
				}
			}
		}
	}
	order := make([]int, l)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return s[order[a]*l+order[a]] > s[order[b]*l+order[b]] })
	vals := make([]float64, l)
	vecs := make([]float64, l*l)
	for j, o := range order {
		vals[j] = s[o*l+o]
		for k := range l {
			vecs[k*l+j] = v[k*l+o]
		}
	}
	return vals, vecs
}

// svdResult is a rank-k truncated SVD A ≈ U Σ Vᵀ.
type svdResult struct {
	k     int
	sigma []float64
	u     dense // rows × k
	v     dense // cols × k
}

// randomizedSVD computes a rank-k truncated SVD of a by the randomised range finder of Halko,
// Martinsson and Tropp (2011): a Gaussian test matrix of k+oversample columns, power iterations
// with re-orthonormalisation, then the SVD of the small matrix B = Qᵀ A via the Jacobi
// eigendecomposition of B·Bᵀ.
func randomizedSVD(a *csr, k, oversample, power int, seed uint64) svdResult {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	l := min(k+oversample, a.rows, a.cols)
	k = min(k, l)
	omega := newDense(a.cols, l)
	for i := range omega.data {
		omega.data[i] = rng.NormFloat64()
	}
	q := a.mul(omega) // rows × l
	orthonormalize(q, rng)
	for range power {
		z := a.tmul(q) // cols × l
		orthonormalize(z, rng)
		q = a.mul(z)
		orthonormalize(q, rng)
	}
	bt := a.tmul(q) // Bᵀ, cols × l
	// B·Bᵀ = (Bᵀ)ᵀ Bᵀ, l × l.
	gram := make([]float64, l*l)
	var mu sync.Mutex
	parallelRows(bt.rows, func(lo, hi int) {
		g := make([]float64, l*l)
		for r := lo; r < hi; r++ {
			row := bt.row(r)
			for i, x := range row {
				if x != 0 {
					axpy(x, row[i:], g[i*l+i:i*l+l])
				}
			}
		}
		mu.Lock()
		axpy(1, g, gram)
		mu.Unlock()
	})
	for i := range l {
		for j := i + 1; j < l; j++ {
			gram[j*l+i] = gram[i*l+j]
		}
	}
	vals, vecs := jacobiEigen(gram, l)
	res := svdResult{k: k, sigma: make([]float64, k), u: newDense(a.rows, k), v: newDense(a.cols, k)}
	for j := range k {
		res.sigma[j] = math.Sqrt(max(vals[j], 0))
	}
	// U = Q·Ũ_k.
	for r := range a.rows {
		qr, ur := q.row(r), res.u.row(r)
		for i, x := range qr {
			axpy(x, vecs[i*l:i*l+k], ur)
		}
	}
	// V = Bᵀ·Ũ_k·Σ⁻¹.
	parallelRows(a.cols, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			br, vr := bt.row(r), res.v.row(r)
			for i, x := range br {
				axpy(x, vecs[i*l:i*l+k], vr)
			}
			for j := range k {
				if res.sigma[j] > 0 {
					vr[j] /= res.sigma[j]
				}
			}
		}
	})
	return res
}
