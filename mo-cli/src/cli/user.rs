//! `mo user …` and `mo user key …`.

use std::path::PathBuf;

use clap::Subcommand;

/// `mo user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user with a password, SSH public keys, or both.
    ///
    /// Without --password-stdin and without --ssh-key the user could not log in, so that is
    /// refused.
    #[command(after_help = "Examples:\n  \
        echo 's3cret' | mo user add alice --password-stdin\n  \
        mo user add bob --ssh-key ~/.ssh/id_ed25519.pub\n  \
        mo user add carol --password-stdin --ssh-key carol.pub --ssh-key carol-laptop.pub < pw.txt")]
    Add {
        /// User name: `[a-z_][a-z0-9_.-]*`, at most 32 characters (no `:`).
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// A file of OpenSSH public keys (one per line, like `id_ed25519.pub`); repeatable.
        #[arg(long, value_name = "FILE")]
        ssh_key: Vec<PathBuf>,
    },
    /// Set a user's password, read from the first line of standard input.
    #[command(after_help = "Example:\n  echo 'n3w' | mo user passwd alice --password-stdin")]
    Passwd {
        /// The user.
        name: String,
        /// Read the new password from the first line of standard input (required).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Manage a user's SSH public keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// List users with their credentials.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a user and their SSH keys.
    #[command(alias = "remove")]
    Rm {
        /// The user.
        name: String,
    },
}

/// `mo user key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add the public keys in FILE (one per line; `-` reads standard input).
    #[command(after_help = "Example:\n  mo user key add alice ~/.ssh/id_ed25519.pub")]
    Add {
        /// The user.
        name: String,
        /// A file of OpenSSH public keys, or `-` for standard input.
        file: PathBuf,
    },
    /// List a user's keys with their SHA-256 fingerprints.
    List {
        /// The user.
        name: String,
        /// Print a JSON array of keys (type, fingerprint, comment).
        #[arg(long)]
        json: bool,
    },
    /// Remove a key, given by fingerprint (`SHA256:…`, as `mo user key list` shows it).
    #[command(alias = "remove")]
    Rm {
        /// The user.
        name: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
}
