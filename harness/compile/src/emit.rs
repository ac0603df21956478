//! Arena planning and serialisation of a lowered program into the tinyml format.

use gauntlet_tinyml::{FORMAT_VERSION, MAGIC, Model, NO_CONST, SectionKind};

use crate::lower::{Field, Id, Program};
use crate::{CompileError, Compiled};

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Byte offset of every buffer. Buffers live from the op defining them to their last reader;
/// an in-place-capable op whose input dies there writes over it; the rest are placed first-fit
/// among the buffers live at the same time.
fn plan(p: &Program) -> (Vec<usize>, usize) {
    let n = p.sizes.len();
    let forever = p.ops.len() + 1;
    let mut def = vec![0usize; n];
    let mut last = vec![0usize; n];
    // Op i runs at time i + 1; the input is written at time 0 and the output read at the end.
    for (i, op) in p.ops.iter().enumerate() {
        for f in &op.fields {
            match *f {
                Field::In(v) => last[v] = last[v].max(i + 1),
                Field::Out(v) => def[v] = i + 1,
                _ => {}
            }
        }
    }
    last[p.output] = forever;
    last[p.input] = last[p.input].max(def[p.input]);

    let mut home: Vec<Id> = (0..n).collect();
    for (i, op) in p.ops.iter().enumerate() {
        let ins: Vec<Id> = op
            .fields
            .iter()
            .filter_map(|f| if let Field::In(v) = f { Some(*v) } else { None })
            .collect();
        let out = op.fields.iter().find_map(|f| {
            if let Field::Out(v) = f {
                Some(*v)
            } else {
                None
            }
        });
        if let (true, [x], Some(y)) = (op.in_place, ins.as_slice(), out)
            && last[*x] == i + 1
            && p.sizes[*x] == p.sizes[y]
        {
            home[y] = home[*x];
        }
    }
    // Lifetime of each home buffer: the union of the values sharing it.
    let mut start = vec![usize::MAX; n];
    let mut end = vec![0usize; n];
    for v in 0..n {
        let h = home[v];
        start[h] = start[h].min(def[v]);
        end[h] = end[h].max(last[v].max(def[v]));
    }
    let mut offsets = vec![0usize; n];
    let mut placed: Vec<(usize, usize, Id)> = Vec::new();
    let mut homes: Vec<Id> = (0..n).filter(|&v| home[v] == v).collect();
    homes.sort_by_key(|&h| (start[h], std::cmp::Reverse(p.sizes[h])));
    let mut arena = 0;
    for h in homes {
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(_, _, o)| !(end[o] < start[h] || end[h] < start[o]))
            .map(|&(off, len, _)| (off, off + len))
            .collect();
        busy.sort_unstable();
        let size = align4(p.sizes[h]);
        let mut at = 0;
        for (s, e) in busy {
            if at + size <= s {
                break;
            }
            at = at.max(align4(e));
        }
        placed.push((at, size, h));
        offsets[h] = at;
        arena = arena.max(at + size);
    }
    let offsets = (0..n).map(|v| offsets[home[v]]).collect();
    (offsets, arena)
}

fn push_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn emit(p: &Program) -> Result<Compiled, CompileError> {
    let (offsets, arena_len) = plan(p);
    let mut ops = Vec::new();
    let mut consts: Vec<u8> = Vec::new();
    for op in &p.ops {
        push_u32(&mut ops, op.code as u32);
        push_u32(&mut ops, op.fields.len() as u32);
        for f in &op.fields {
            let w = match f {
                Field::W(w) => *w,
                Field::In(v) | Field::Out(v) => offsets[*v] as u32,
                Field::NoConst => NO_CONST,
                Field::Const(bytes) => {
                    consts.resize(align4(consts.len()), 0);
                    let at = consts.len() as u32;
                    consts.extend_from_slice(bytes);
                    at
                }
            };
            push_u32(&mut ops, w);
        }
    }
    consts.resize(align4(consts.len()), 0);
    let meta: Vec<u8> = [
        p.input_len,
        p.output_len,
        arena_len,
        offsets[p.input],
        offsets[p.output],
        p.ops.len(),
    ]
    .iter()
    .flat_map(|&v| (v as u32).to_le_bytes())
    .collect();

    let header_len = 16 + 3 * 12;
    let sections = [
        (SectionKind::Meta, &meta),
        (SectionKind::Ops, &ops),
        (SectionKind::Const, &consts),
    ];
    let total = header_len + meta.len() + ops.len() + consts.len();
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(&MAGIC);
    push_u32(&mut bytes, FORMAT_VERSION);
    push_u32(&mut bytes, total as u32);
    push_u32(&mut bytes, sections.len() as u32);
    let mut at = header_len;
    for (kind, body) in &sections {
        push_u32(&mut bytes, *kind as u32);
        push_u32(&mut bytes, at as u32);
        push_u32(&mut bytes, body.len() as u32);
        at += body.len();
    }
    for (_, body) in &sections {
        bytes.extend_from_slice(body);
    }

    // The engine's own validator checks every compiled blob, and names its ops for the report.
    let model = Model::parse(&bytes).map_err(|e| {
        CompileError::Internal(format!("the engine rejects the compiled model: {e}"))
    })?;
    let ops = model.ops().map(str::to_string).collect();
    Ok(Compiled {
        ops,
        arena_len,
        weights_bytes: consts.len(),
        macs: p.ops.iter().map(|o| o.macs).sum(),
        input_len: p.input_len,
        output_len: p.output_len,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::IrOp;

    fn op(code: gauntlet_tinyml::Opcode, fields: Vec<Field>, in_place: bool) -> IrOp {
        IrOp {
            code,
            fields,
            in_place,
            macs: 0,
        }
    }

    #[test]
    fn plan_reuses_dead_buffers_and_never_overlaps_live_ones() {
        use gauntlet_tinyml::Opcode::*;
        // 0 (input) → 1 → 2 (in place over 1) → 3 → 4 (output)
        let p = Program {
            sizes: vec![400, 400, 400, 40, 4],
            ops: vec![
                op(UnaryF32, vec![Field::In(0), Field::Out(1)], true),
                op(UnaryF32, vec![Field::In(1), Field::Out(2)], true),
                op(GemmF32, vec![Field::In(2), Field::Out(3)], false),
                op(GemmF32, vec![Field::In(3), Field::Out(4)], false),
            ],
            input: 0,
            output: 4,
            input_len: 100,
            output_len: 1,
        };
        let (off, arena) = plan(&p);
        assert_eq!(
            (off[0], off[1], off[2]),
            (0, 0, 0),
            "in-place ops reuse their dying input"
        );
        let overlap =
            |a: usize, b: usize| off[a] < off[b] + p.sizes[b] && off[b] < off[a] + p.sizes[a];
        assert!(
            !overlap(2, 3) && !overlap(3, 4),
            "an op's input and output never share bytes"
        );
        assert_eq!(off[4], 0, "the output reuses the dead first buffer");
        assert_eq!(arena, 440);
    }
}
