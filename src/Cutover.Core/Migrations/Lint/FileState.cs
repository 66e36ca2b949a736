using Cutover.Migrations.Sql;

namespace Cutover.Migrations.Lint;

/// <summary>
/// What the statements before the current one did, for rules that depend on the file so far: tables created
/// here (empty, invisible to the running app, so locks and rewrites on them are harmless), the explicit
/// transaction, lock_timeout, and NOT VALID constraints awaiting validation. One per linted file.
/// </summary>
internal sealed class FileState
{
    private readonly HashSet<string> _createdTables = new(StringComparer.Ordinal);
    private readonly HashSet<string> _createdIndexes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string? Column, int Transaction)> _notValid = new(StringComparer.Ordinal);
    private readonly HashSet<string> _validatedNotNull = new(StringComparer.Ordinal);
    private bool _lockTimeoutIsLocal;

    /// <summary>Statements that change something (not SET/RESET, not BEGIN/COMMIT): re-running a file of one of them is always safe.</summary>
    public required int ChangingStatements { get; init; }

    public bool InTransaction { get; private set; }
    public SqlStatement? OpenBegin { get; private set; }
    /// <summary>Numbers explicit transactions; outside one every statement is its own (autocommit).</summary>
    public int Transaction { get; private set; }
    public bool LockTimeoutSet { get; private set; }
    public bool LockTimeoutReported { get; set; }

    public bool IsNewTable(QualifiedName table) => _createdTables.Contains(Key(table));

    public bool IsNewIndex(QualifiedName index) => _createdIndexes.Contains(Key(index));

    public List<QualifiedName> ExistingTables(IReadOnlyList<QualifiedName> names) => Existing(names, _createdTables);

    public List<QualifiedName> ExistingIndexes(IReadOnlyList<QualifiedName> names) => Existing(names, _createdIndexes);

    private static List<QualifiedName> Existing(IReadOnlyList<QualifiedName> names, HashSet<string> created)
    {
        var existing = new List<QualifiedName>(names.Count);
        foreach (var name in names)
            if (!created.Contains(Key(name))) existing.Add(name);
        return existing;
    }

    /// <summary>True when VALIDATE of this constraint would run in the transaction that added it NOT VALID.</summary>
    public bool AddedNotValidInThisTransaction(QualifiedName table, string constraint) =>
        InTransaction && _notValid.TryGetValue(Key(table) + "\0" + constraint, out var added) && added.Transaction == Transaction;

    public bool HasValidatedNotNullCheck(QualifiedName table, QualifiedName column) =>
        _validatedNotNull.Contains(Key(table) + "\0" + column.Key);

    /// <summary>Called after the rules saw the statement.</summary>
    public void Apply(ParsedStatement parsed)
    {
        switch (parsed)
        {
            case TransactionStatement { Kind: TransactionKind.Begin } begin:
                if (!InTransaction) Transaction++;
                InTransaction = true;
                OpenBegin = begin.Statement;
                break;
            case TransactionStatement:
                if (InTransaction) Transaction++;
                InTransaction = false;
                if (_lockTimeoutIsLocal) LockTimeoutSet = false;
                _lockTimeoutIsLocal = false;
                break;
            case SetStatement set when set.Name == "lock_timeout":
                LockTimeoutSet = set.Value is not null && !IsZero(set.Value);
                // SET LOCAL ends with the explicit transaction; outside one, the runner's transaction (if any) holds it for the file.
                _lockTimeoutIsLocal = set.Local && InTransaction;
                break;
            case SetStatement { Name: "all", Value: null }:
                LockTimeoutSet = false;
                break;
            case CreateTableStatement create:
                _createdTables.Add(Key(create.Table));
                break;
            case CreateIndexStatement { Name: { } name }:
                _createdIndexes.Add(Key(name));
                break;
            case AlterTableStatement alter:
                foreach (var action in alter.Actions) Apply(alter.Table, action);
                break;
        }
        if (!InTransaction && parsed is not TransactionStatement) Transaction++;
    }

    private void Apply(QualifiedName table, AlterTableAction action)
    {
        switch (action)
        {
            case AddConstraintAction { Constraint: { NotValid: true, Name: { } name } constraint }:
                _notValid[Key(table) + "\0" + name] = (constraint.NotNullColumn, Transaction);
                break;
            case ValidateConstraintAction validate
                when _notValid.TryGetValue(Key(table) + "\0" + validate.Name, out var added) && added.Column is { } column:
                _validatedNotNull.Add(Key(table) + "\0" + column);
                break;
            case RenameTableAction rename when _createdTables.Remove(Key(table)):
                _createdTables.Add(Key(rename.NewName));
                break;
        }
    }

    private static bool IsZero(string value) => value.Trim().Trim('\'').Trim() is "0" or "0ms" or "0s";

    /// <summary>Tables are matched by name; "public." is the usual default schema, so it is dropped.</summary>
    private static string Key(QualifiedName name) =>
        name.Key.StartsWith("public.", StringComparison.Ordinal) ? name.Key["public.".Length..] : name.Key;
}
