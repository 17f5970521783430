//! `assay faucet`: devnet IOSD or IO for this node; `assay account`:
//! balances, stakes, earnings and block rewards.

use assay_proto::pb;
use assay_proto::pb::renter_client::RenterClient;
use assay_protocol::NodeId;
use clap::Args;

use super::net::{CoordinatorUrl, amount, node_key, rpc, signed};
use crate::Failure;

#[derive(Debug, Args)]
pub struct FaucetArgs {
    /// Base units to get (µIOSD or µIO: 1 IOSD = 1,000,000 µIOSD).
    #[arg(long, default_value_t = 1_000_000_000)]
    pub amount: u64,
    /// `iosd` (minted by burning the faucet's IO at the current price) or `io`.
    #[arg(long, default_value = "iosd", value_parser = ["iosd", "io"])]
    pub unit: String,
    /// Then get this many µIO too and stake them (staked renters queue first).
    #[arg(long, default_value_t = 0)]
    pub stake: u64,
    #[command(flatten)]
    pub coordinator: CoordinatorUrl,
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The node [default: this node].
    pub node: Option<NodeId>,
    /// Print JSON (amounts in base units: µIOSD, µIO).
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
            "iosd": {
                "balance": a.balance,
                "earnings": a.earnings,
                "verifier_earnings": a.verifier_earnings,
            },
            "io": {
                "balance": a.io_balance,
                "stake": a.stake,
                "stake_floor": a.stake_floor,
                "unbonding": a.unbonding,
                "unbonding_release_ms": a.unbonding_release_ms,
                "rewards": a.rewards,
            },
        })
    );
}

pub(super) fn print(a: &pb::AccountResponse) {
    println!("node              {}", hex::encode(&a.node_id));
    println!("IOSD balance      {}", amount(a.balance));
    println!("IOSD earnings     {}   (verified work)", amount(a.earnings));
    if a.verifier_earnings > 0 {
        println!("IOSD verifier     {}", amount(a.verifier_earnings));
    }
    println!("IO balance        {}", amount(a.io_balance));
    print!("IO stake          {}", amount(a.stake));
    if a.stake_floor > 0 {
        let status = if a.stake >= a.stake_floor {
            "hireable"
        } else {
            "NOT hired: stake more IO"
        };
        print!("   (floor {}: {status})", amount(a.stake_floor));
    }
    println!();
    if a.unbonding > 0 {
        println!(
            "IO unbonding      {}   (spendable at {} ms)",
            amount(a.unbonding),
            a.unbonding_release_ms
        );
    }
    println!("IO rewards        {}   (block rewards)", amount(a.rewards));
}

pub fn main(args: FaucetArgs) -> Result<u8, Failure> {
    let url = args.coordinator.coordinator.clone();
    let rt = super::net::tokio()?;
    let channel = args.coordinator.channel(&rt)?;
    let key = super::net::signer(&rt, &channel, &url)?;
    rt.block_on(async {
        let mut client = RenterClient::new(channel);
        let req = signed(
            &key,
            pb::FaucetRequest {
                auth: None,
                amount: args.amount,
                unit: args.unit.clone(),
            },
        )?;
        let mut a = client.faucet(req).await.map_err(rpc(&url))?.into_inner();
        if args.stake > 0 {
            let req = signed(
                &key,
                pb::FaucetRequest {
                    auth: None,
                    amount: args.stake,
                    unit: "io".into(),
                },
            )?;
            client.faucet(req).await.map_err(rpc(&url))?;
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
