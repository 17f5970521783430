//! `assay faucet`: devnet credits for this node; `assay account`: balances.

use assay_proto::pb;
use assay_proto::pb::renter_client::RenterClient;
use assay_protocol::NodeId;
use clap::Args;

use super::net::{CoordinatorUrl, credits, node_key, rpc, signed};
use crate::Failure;

#[derive(Debug, Args)]
pub struct FaucetArgs {
    /// µcr to mint (1 credit = 1,000,000 µcr).
    #[arg(long, default_value_t = 1_000_000_000)]
    pub amount: u64,
    /// Then move this many µcr of the balance into stake (staked renters queue first).
    #[arg(long, default_value_t = 0)]
    pub stake: u64,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The node [default: this node].
    pub node: Option<NodeId>,
    /// Print JSON (amounts in µcr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

fn print_json(a: &pb::AccountResponse) {
    println!(
        "{}",
        serde_json::json!({
            "node": hex::encode(&a.node_id),
            "balance": a.balance,
            "stake": a.stake,
            "earnings": a.earnings,
            "verifier_earnings": a.verifier_earnings,
        })
    );
}

fn print(a: &pb::AccountResponse) {
    println!("node         {}", hex::encode(&a.node_id));
    println!("balance      {} credits", credits(a.balance));
    println!("stake        {} credits", credits(a.stake));
    println!("earnings     {} credits", credits(a.earnings));
}

pub fn main(args: FaucetArgs) -> Result<u8, Failure> {
    let key = node_key()?;
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    rt.block_on(async {
        let mut client = RenterClient::new(channel);
        let req = signed(
            &key,
            pb::FaucetRequest {
                auth: None,
                amount: args.amount,
            },
        )?;
        let mut a = client.faucet(req).await.map_err(rpc(&url))?.into_inner();
        if args.stake > 0 {
            let req = signed(
                &key,
                pb::StakeRequest {
                    auth: None,
                    amount: args.stake,
                },
            )?;
            a = client.stake(req).await.map_err(rpc(&url))?.into_inner();
        }
        print(&a);
        Ok(0)
    })
}

pub fn account(args: AccountArgs) -> Result<u8, Failure> {
    let node = match args.node {
        Some(n) => n,
        None => node_key()?.id(),
    };
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    rt.block_on(async {
        let a = RenterClient::new(channel)
            .get_account(pb::GetAccountRequest {
                node_id: node.0.to_vec(),
            })
            .await
            .map_err(rpc(&url))?
            .into_inner();
        if args.json {
            print_json(&a);
        } else {
            print(&a);
        }
        Ok(0)
    })
}
