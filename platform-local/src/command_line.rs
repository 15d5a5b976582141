//! The bot command (`LOCAL_BOT_COMMAND`): split into a program and its
//! arguments with shell-like quoting, and the program found on disk.
//!
//! The command is **not** run by a shell. The splitting rules are a small,
//! predictable subset of POSIX shell quoting:
//!
//! - words are separated by spaces, tabs or newlines;
//! - `'…'` keeps everything between the quotes as it is;
//! - `"…"` keeps everything as it is, except that `\"` and `\\` stand for `"`
//!   and `\` (a `$` inside quotes is passed on as it is, so in
//!   `sh -c "exec bot --port $BOT_PORT"` the bot's shell expands it);
//! - outside quotes, `\` makes the next character ordinary (`my\ bot` is one
//!   word);
//! - `''` or `""` is an empty argument.
//!
//! There is no variable expansion, globbing, `~`, pipe or redirection, and
//! an unquoted `$ | & ; < > ( ) \`` or a word starting with `~` is refused
//! rather than passed on silently. To use them, run a shell explicitly:
//! `sh -c 'exec my-bot --flag "$HOME/x" 2>&1'`.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The name of the Meeboter deploy binary: a bot command whose program is
/// this name runs the service's own executable when the service is that
/// binary, so `meeboter-deploy sim-bot` works without being on `PATH`.
pub const SERVICE_BINARY_NAME: &str = "meeboter-deploy";

/// Characters a shell would interpret and this splitter does not.
const SHELL_OPERATORS: &[char] = &['$', '|', '&', ';', '<', '>', '(', ')', '`'];

/// The program a bot runs and its arguments.
#[derive(Clone, PartialEq, Eq)]
pub struct BotCommand {
    program: String,
    args: Vec<String>,
}

impl BotCommand {
    /// A command from a program and its arguments, taken as they are.
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// Splits a command line with the rules in this module's documentation.
    pub fn parse(line: &str) -> Result<Self, CommandLineError> {
        let mut words = split_words(line)?.into_iter();
        let program = words.next().ok_or(CommandLineError::Empty)?;
        if program.is_empty() {
            return Err(CommandLineError::EmptyProgram);
        }
        Ok(Self {
            program,
            args: words.collect(),
        })
    }

    /// The program, as written (a name looked up on `PATH`, or a path).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Finds the program: the service's own executable for
    /// [`SERVICE_BINARY_NAME`] when the service is that binary, a path as
    /// written when it contains a `/`, otherwise the first match on `PATH`.
    /// The result is an executable regular file.
    pub fn resolve(&self) -> Result<PathBuf, ProgramProblem> {
        resolve_program(
            &self.program,
            std::env::var_os("PATH"),
            std::env::current_exe().ok(),
        )
    }
}

/// Only the program is shown: arguments may carry an operator's token.
impl fmt::Debug for BotCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotCommand")
            .field("program", &self.program)
            .field("args", &format_args!("[{} hidden]", self.args.len()))
            .finish()
    }
}

/// Why a command line could not be split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandLineError {
    /// Nothing but whitespace.
    #[error("is empty; give the program to run, e.g. `meeboter-deploy sim-bot`")]
    Empty,
    /// The first word is an empty string (`'' arg`).
    #[error("starts with an empty program name")]
    EmptyProgram,
    /// A quote was opened and never closed.
    #[error("has an unterminated {quote} quote opened at character {position}")]
    UnterminatedQuote {
        /// `single` or `double`.
        quote: &'static str,
        /// 1-based character position of the opening quote.
        position: usize,
    },
    /// The line ends with a lone backslash.
    #[error("ends with a backslash that escapes nothing")]
    TrailingBackslash,
    /// A shell operator outside quotes: the command is not run by a shell.
    #[error(
        "contains an unquoted `{operator}` at character {position}; the command is not run by a shell, so quote it or write `sh -c '…'` to use variables, pipes or redirections"
    )]
    ShellOperator {
        /// The character.
        operator: char,
        /// 1-based character position.
        position: usize,
    },
    /// A word starting with an unquoted `~`, which no shell will expand.
    #[error(
        "has a word starting with `~` at character {position}; `~` is not expanded: write the full path"
    )]
    Tilde {
        /// 1-based character position.
        position: usize,
    },
}

fn split_words(line: &str) -> Result<Vec<String>, CommandLineError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has started: `''` is a word even though it is empty.
    let mut in_word = false;
    let mut chars = line.chars().enumerate().map(|(i, c)| (i + 1, c));
    while let Some((position, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => word.push(c),
                        None => {
                            return Err(CommandLineError::UnterminatedQuote {
                                quote: "single",
                                position,
                            });
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('"' | '\\'))) => word.push(c),
                            Some((_, c)) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err(CommandLineError::UnterminatedQuote {
                                    quote: "double",
                                    position,
                                });
                            }
                        },
                        Some((_, c)) => word.push(c),
                        None => {
                            return Err(CommandLineError::UnterminatedQuote {
                                quote: "double",
                                position,
                            });
                        }
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, c)) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err(CommandLineError::TrailingBackslash),
            },
            '~' if !in_word => return Err(CommandLineError::Tilde { position }),
            c if SHELL_OPERATORS.contains(&c) => {
                return Err(CommandLineError::ShellOperator {
                    operator: c,
                    position,
                });
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Why the bot program cannot be run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProgramProblem {
    /// No such program on `PATH`.
    #[error(
        "program `{program}` was not found on PATH; install it, give its full path, or set LOCAL_BOT_COMMAND to the bot to run"
    )]
    NotOnPath {
        /// The program as written.
        program: String,
    },
    /// The path does not exist.
    #[error("program {} does not exist", .path.display())]
    Missing {
        /// The path as written.
        path: PathBuf,
    },
    /// The path is a directory or another non-file.
    #[error("program {} is not a regular file", .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file has no execute permission.
    #[error("program {} is not executable (chmod +x it)", .path.display())]
    NotExecutable {
        /// The path.
        path: PathBuf,
    },
}

/// [`BotCommand::resolve`] with its inputs passed in, so tests do not depend
/// on the process environment.
pub(crate) fn resolve_program(
    program: &str,
    path_var: Option<OsString>,
    current_exe: Option<PathBuf>,
) -> Result<PathBuf, ProgramProblem> {
    if program == SERVICE_BINARY_NAME
        && let Some(exe) = current_exe.filter(|exe| {
            exe.file_name()
                .is_some_and(|name| name == SERVICE_BINARY_NAME)
        })
    {
        return check_executable(&exe).map(|()| exe);
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return check_executable(&path).map(|()| path);
    }
    let path_var = path_var.unwrap_or_default();
    let mut found_not_executable = None;
    for dir in std::env::split_paths(&path_var) {
        // An empty PATH entry means the working directory, which we do not
        // search: a bot must not depend on where the service was started.
        if dir.as_os_str().is_empty() {
            continue;
        }
        let candidate = dir.join(program);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(problem @ ProgramProblem::NotExecutable { .. }) => {
                found_not_executable.get_or_insert(problem);
            }
            Err(_) => {}
        }
    }
    Err(
        found_not_executable.unwrap_or_else(|| ProgramProblem::NotOnPath {
            program: program.to_owned(),
        }),
    )
}

fn check_executable(path: &Path) -> Result<(), ProgramProblem> {
    let metadata = std::fs::metadata(path).map_err(|_| ProgramProblem::Missing {
        path: path.to_owned(),
    })?;
    if !metadata.is_file() {
        return Err(ProgramProblem::NotAFile {
            path: path.to_owned(),
        });
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err(ProgramProblem::NotExecutable {
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_words(line).unwrap()
    }

    #[test]
    fn splits_on_whitespace_and_honours_quotes() {
        assert_eq!(
            words("meeboter-deploy sim-bot"),
            ["meeboter-deploy", "sim-bot"]
        );
        assert_eq!(words("  a \t b\n c  "), ["a", "b", "c"]);
        assert_eq!(
            words(r#"sh -c 'trap "exit 0" TERM; sleep 5 & wait'"#),
            ["sh", "-c", r#"trap "exit 0" TERM; sleep 5 & wait"#]
        );
        assert_eq!(
            words(r#"echo "a \"b\" \\ \n c""#),
            ["echo", r#"a "b" \ \n c"#]
        );
        assert_eq!(words(r"my\ bot x\$y"), ["my bot", "x$y"]);
        assert_eq!(words("a '' \"\" b"), ["a", "", "", "b"]);
        assert_eq!(words("pre'fix'\"ed\" x"), ["prefixed", "x"]);
        assert_eq!(words("a~b"), ["a~b"]);
    }

    #[test]
    fn refuses_what_only_a_shell_would_understand() {
        assert_eq!(
            split_words("bot > out.log").unwrap_err(),
            CommandLineError::ShellOperator {
                operator: '>',
                position: 5
            }
        );
        assert!(matches!(
            split_words("bot $HOME"),
            Err(CommandLineError::ShellOperator { operator: '$', .. })
        ));
        assert!(matches!(
            split_words("a | b"),
            Err(CommandLineError::ShellOperator { operator: '|', .. })
        ));
        assert_eq!(
            split_words("~/bin/bot").unwrap_err(),
            CommandLineError::Tilde { position: 1 }
        );
        assert_eq!(
            split_words("bot 'oops").unwrap_err(),
            CommandLineError::UnterminatedQuote {
                quote: "single",
                position: 5
            }
        );
        assert_eq!(
            split_words("bot \"oops").unwrap_err(),
            CommandLineError::UnterminatedQuote {
                quote: "double",
                position: 5
            }
        );
        assert_eq!(
            split_words("bot \\").unwrap_err(),
            CommandLineError::TrailingBackslash
        );
        assert_eq!(
            BotCommand::parse("   ").unwrap_err(),
            CommandLineError::Empty
        );
        assert_eq!(
            BotCommand::parse("'' x").unwrap_err(),
            CommandLineError::EmptyProgram
        );
        let message = split_words("bot > out.log").unwrap_err().to_string();
        assert!(message.contains("sh -c"), "{message}");
    }

    #[test]
    fn parse_gives_program_and_arguments() {
        let command = BotCommand::parse("meeboter-deploy sim-bot --exit-after 30").unwrap();
        assert_eq!(command.program(), "meeboter-deploy");
        assert_eq!(command.args(), ["sim-bot", "--exit-after", "30"]);
    }

    #[test]
    fn debug_hides_arguments() {
        let command = BotCommand::parse("bot --token s3cret").unwrap();
        let shown = format!("{command:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("bot"), "{shown}");
    }

    #[test]
    fn programs_are_found_on_path_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("my-bot");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("not-exec");
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = Some(OsString::from(format!(
            "/nonexistent:{}",
            dir.path().display()
        )));

        assert_eq!(resolve_program("my-bot", path.clone(), None).unwrap(), exe);
        assert_eq!(
            resolve_program("nope", path.clone(), None).unwrap_err(),
            ProgramProblem::NotOnPath {
                program: "nope".into()
            }
        );
        assert_eq!(
            resolve_program("not-exec", path.clone(), None).unwrap_err(),
            ProgramProblem::NotExecutable {
                path: plain.clone()
            }
        );
        let by_path = plain.display().to_string();
        assert!(matches!(
            resolve_program(&by_path, None, None),
            Err(ProgramProblem::NotExecutable { .. })
        ));
        let dir_path = dir.path().display().to_string();
        assert!(matches!(
            resolve_program(&dir_path, None, None),
            Err(ProgramProblem::NotAFile { .. })
        ));
        assert!(matches!(
            resolve_program("/no/such/bot", None, None),
            Err(ProgramProblem::Missing { .. })
        ));
    }

    #[test]
    fn the_service_binary_runs_itself_when_it_is_meeboter_deploy() {
        let dir = tempfile::tempdir().unwrap();
        let service = dir.path().join("meeboter-deploy");
        std::fs::write(&service, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&service, std::fs::Permissions::from_mode(0o755)).unwrap();
        let resolved = resolve_program(
            "meeboter-deploy",
            Some(OsString::new()),
            Some(service.clone()),
        );
        assert_eq!(resolved.unwrap(), service);
        // Any other executable (a test binary) falls back to PATH.
        let other = dir.path().join("deployment-1234");
        let resolved = resolve_program("meeboter-deploy", Some(OsString::new()), Some(other));
        assert!(matches!(resolved, Err(ProgramProblem::NotOnPath { .. })));
    }
}
