//! The `Arbitration` service: the parties of a dispute take the questions
//! of its bisection game and answer them. Each answer is decoded into the
//! game's terms here — a revealed input's tensor is read from the blob
//! store and checked against the agreed prefix of the traces
//! (`InputEvidence::check`) — and the store moves the game on
//! ([`crate::rules::disputes`]).

use assay_proto::pb::arbitration_server::Arbitration;
use assay_proto::{convert, now_ms, pb};
use assay_protocol::trace::{Claim, LeafReveal, MAX_DEPTH, NodeReveal};
use assay_protocol::{Hash32, NodeId, Signature};
use tonic::{Request, Response, Status};

use super::{Coordinator, bad, blocking, wire};
use crate::rules::disputes::{self, Answer, Game, RevealedInput};

/// At most this many tensors in one answer: a call's inputs (a `concat`
/// of a batch's rows can have hundreds).
const MAX_TENSORS: usize = 4_096;
/// At most this many bytes of call encoding in one answer.
const MAX_CALL_BYTES: usize = 64 << 10;

#[tonic::async_trait]
impl Arbitration for Coordinator {
    async fn take_questions(
        &self,
        request: Request<pb::TakeQuestionsRequest>,
    ) -> Result<Response<pb::TakeQuestionsResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let store = self.store.clone();
        let tasks = blocking(move || store.take_questions(&node, now_ms())).await?;
        Ok(Response::new(pb::TakeQuestionsResponse {
            questions: tasks.iter().map(wire::question).collect(),
        }))
    }

    async fn answer(
        &self,
        request: Request<pb::AnswerRequest>,
    ) -> Result<Response<pb::AnswerResponse>, Status> {
        let req = request.into_inner();
        let node = self.authenticate(&req).await?;
        let dispute = convert::hash("dispute_id", &req.dispute_id).map_err(bad)?;
        let answer = if req.unable.is_empty() {
            self.decode_answer(node, dispute, &req).await?
        } else {
            Answer::Unable(req.unable.chars().take(500).collect())
        };
        tracing::info!(dispute = %dispute.short(), party = %node, kind = %req.kind, "dispute answer");
        let store = self.store.clone();
        blocking(move || store.answer_question(&node, &dispute, answer, now_ms())).await?;
        Ok(Response::new(pb::AnswerResponse {}))
    }
}

impl Coordinator {
    async fn decode_answer(
        &self,
        party: NodeId,
        dispute: Hash32,
        req: &pb::AnswerRequest,
    ) -> Result<Answer, Status> {
        let signature = || {
            <[u8; 64]>::try_from(req.reveal_signature.as_slice())
                .map(Signature)
                .map_err(|_| Status::invalid_argument("reveal_signature: 64 bytes expected"))
        };
        let hash = |what: &'static str, b: &[u8]| convert::hash(what, b).map_err(bad);
        if req.call.len() > MAX_CALL_BYTES {
            return Err(Status::invalid_argument(format!(
                "call: {} bytes, at most {MAX_CALL_BYTES}",
                req.call.len()
            )));
        }
        Ok(match req.kind.as_str() {
            "claim" => Answer::Claim(Claim {
                steps: req.trace_steps,
                top: hash("trace_top", &req.trace_top)?,
            }),
            "node" => Answer::Node(NodeReveal {
                dispute,
                party,
                level: req.level,
                index: req.index,
                left: hash("left", &req.left)?,
                right: hash("right", &req.right)?,
                signature: signature()?,
            }),
            "leaf" if req.ended => Answer::Leaf(None),
            "leaf" => Answer::Leaf(Some(LeafReveal {
                dispute,
                party,
                index: req.index,
                call: req.call.clone(),
                output: hash("output", &req.output)?,
                signature: signature()?,
            })),
            "inputs" => {
                let revealed = revealed_inputs(&req.tensors)?;
                let store = self.store.clone();
                let game = blocking(move || store.dispute(&dispute))
                    .await?
                    .ok_or_else(|| Status::not_found(format!("no dispute {dispute}")))?;
                match self.check_inputs(&game, &revealed).await {
                    Ok(ordered) => Answer::Inputs(ordered),
                    Err(why) => Answer::Unable(format!("evidence refused: {why}")),
                }
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "kind: `{other}`, expected claim, node, leaf or inputs"
                )));
            }
        })
    }

    /// Reads each revealed tensor and checks it is the output of its step
    /// in the traces' agreed prefix; answers them in the call's order.
    async fn check_inputs(
        &self,
        game: &Game,
        revealed: &[RevealedInput],
    ) -> Result<Vec<RevealedInput>, String> {
        let Some((index, call, _)) = game.divergence.clone() else {
            return Err("the dispute asks for no inputs".into());
        };
        let ordered = disputes::order_inputs(&call, revealed)?;
        for input in &ordered {
            let blobs = self.blobs.clone();
            let hash = input.blob;
            let bytes = tokio::task::spawn_blocking(move || blobs.read(&hash))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("step {}: {e} (upload the tensor first)", input.step))?;
            disputes::evidence(input, bytes)?
                .check(input.step, index, &game.roots)
                .map_err(|e| e.to_string())?;
        }
        Ok(ordered)
    }
}

fn revealed_inputs(tensors: &[pb::StepTensor]) -> Result<Vec<RevealedInput>, Status> {
    if tensors.len() > MAX_TENSORS {
        return Err(Status::invalid_argument(format!(
            "tensors: {}, at most {MAX_TENSORS}",
            tensors.len()
        )));
    }
    tensors
        .iter()
        .map(|t| {
            if t.siblings.len() > MAX_DEPTH as usize || t.shape.len() > 16 {
                return Err(Status::invalid_argument(format!(
                    "step {}: a proof deeper than {MAX_DEPTH} levels or a shape of more than 16 dims",
                    t.step
                )));
            }
            let blob = t
                .tensor
                .as_ref()
                .ok_or_else(|| Status::invalid_argument(format!("step {}: no tensor", t.step)))?;
            Ok(RevealedInput {
                step: t.step,
                call: t.call.clone(),
                trace_steps: t.trace_steps,
                siblings: t
                    .siblings
                    .iter()
                    .map(|s| convert::hash("siblings", s).map_err(bad))
                    .collect::<Result<_, _>>()?,
                dtype: u8::try_from(t.dtype)
                    .map_err(|_| Status::invalid_argument("dtype: 0 (f32) or 1 (i32)"))?,
                shape: t.shape.clone(),
                blob: convert::hash("tensor.hash", &blob.hash).map_err(bad)?,
                size: blob.size,
            })
        })
        .collect()
}
