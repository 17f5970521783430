//! Window launches: conv2d and max-pool over `[n, c, h, w]`, one thread per
//! output element. The CPU reference is `cpu/conv.rs`.

use super::gpu::{Param, Window};
use super::{CudaBackend, CudaBuffer, i64of, input, u64of};
use crate::backend::contract::TensorRef;
use crate::dtype::DType;
use crate::error::Error;

impl CudaBackend {
    pub(super) fn conv2d(
        &self,
        inputs: &[TensorRef<'_>],
        (stride, padding, has_bias): ((usize, usize), (usize, usize), bool),
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        let (xr, w) = (input(inputs, 0)?, input(inputs, 1)?);
        let &[o_ch, c, kh, kw] = w.shape else {
            return Err(Error::Device(format!("cuda: conv2d weight {:?}", w.shape)));
        };
        let g = window(xr.shape, out_shape, (kh, kw), stride, padding, o_ch)?;
        if xr.shape[1] != c {
            return Err(Error::Device("cuda: conv2d channels".into()));
        }
        let bias = if has_bias {
            let b = input(inputs, 2)?;
            if b.shape != [o_ch] {
                return Err(Error::Device("cuda: conv2d bias shape".into()));
            }
            self.ptr(b, DType::F32)?
        } else {
            Param::Ptr(0)
        };
        self.launch_flat(
            "assay_conv2d",
            n,
            &[
                self.ptr(xr, DType::F32)?,
                self.ptr(w, DType::F32)?,
                bias,
                o,
                Param::Window(g),
                Param::I32(i32::from(has_bias)),
            ],
        )
    }

    pub(super) fn max_pool2d(
        &self,
        inputs: &[TensorRef<'_>],
        (kernel, stride, padding): ((usize, usize), (usize, usize), (usize, usize)),
        out_shape: &[usize],
        out: &CudaBuffer,
    ) -> Result<(), Error> {
        let o = Param::Ptr(out.mem.ptr);
        let n = u64of(out.len);
        let xr = input(inputs, 0)?;
        let g = window(xr.shape, out_shape, kernel, stride, padding, 0)?;
        self.launch_flat(
            "assay_max_pool2d",
            n,
            &[self.ptr(xr, DType::F32)?, o, Param::Window(g)],
        )
    }
}

/// The window geometry of x `[n, c, h, w]` → `[n, o|c, ho, wo]`.
fn window(
    x: &[usize],
    out: &[usize],
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    o: usize,
) -> Result<Window, Error> {
    let (&[n, c, h, w], &[_, _, ho, wo]) = (x, out) else {
        return Err(Error::Device(format!("cuda: window op on {x:?} → {out:?}")));
    };
    Ok(Window {
        n: i64of(n),
        c: i64of(c),
        h: i64of(h),
        w: i64of(w),
        o: i64of(o),
        kh: i64of(kernel.0),
        kw: i64of(kernel.1),
        sh: i64of(stride.0),
        sw: i64of(stride.1),
        ph: i64of(padding.0),
        pw: i64of(padding.1),
        ho: i64of(ho),
        wo: i64of(wo),
    })
}
